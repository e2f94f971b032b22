"""The judge's score is read only where the judge was told to put it, through the fake upstream.

The cases are the ways a reasoning judge writes numbers that are not its score: arithmetic
before the score, a score it revises, no score at all. Reading the first number in
"2+2=4, so the completion is wrong. Score: 0" gave 1.0; here it gives 0.0, and replies whose
score cannot be found unambiguously are null with reason `unparseable judge reply`.
"""

import pytest

from proto.models import ItemStatus
from services.llm_judge.extract import extract_score, reply_rule
from services.llm_judge.scorer import JudgeParams
from tests.services.llm_judge.fake_openai import chat
from tests.services.llm_judge.support import item, score, scorer_for


class TestScoreLine:
    @pytest.mark.parametrize(("reply", "raw"), [
        ("2+2=4, so the completion is wrong.\nScore: 0", 0.0),
        ("The reference says 3 cats; the completion says 3.\nScore: 1", 1.0),
        ("Step 1: 10 apples. Step 2: 7 left.\n\nscore: 0.25\n", 0.25),
        ("<think>maybe 0.9, maybe 0.1</think>\nclose enough\nSCORE: 0.5", 0.5),
        ("0.75", 0.75),
        ("  1  \n", 1.0),
    ])
    def test_reads_only_the_final_score_line(self, reply, raw):
        assert extract_score(reply, (0.0, 1.0), structured=False).raw == raw

    @pytest.mark.parametrize("reply", [
        "2+2=4, so the completion is wrong. Score: 0",  # the score is not on its own line
        "The answer 42 is right.",  # numbers, no score
        "Score: 1\nScore: 0",  # two scores
        "Score: 0.2\nOn reflection it is better.\nScore: 0.9",  # two scores, the last one final
        "Score: 1\nbecause it matches",  # the score line is not the last
        "Score: 0.8 (fairly good)",  # more than a number on the score line
        "Score: high",
        "Score: ٣",  # digits the rule does not ask for
        "0.5\n0.7",  # two lone numbers
        "Score:",
        "",
    ])
    def test_anything_else_is_none(self, reply):
        assert extract_score(reply, (0.0, 1.0), structured=False) is None

    def test_the_prompt_asks_for_the_line(self):
        assert "Score: <number from 0 to 1>" in reply_rule((0.0, 1.0), structured=False)


class TestThroughTheUpstream:
    def test_numbers_before_the_score(self, fake):
        fake.default = chat("2+2=4, so the completion is wrong.\nScore: 0")
        [got] = score(scorer_for(fake), [item()])
        assert (got.reward, got.status, got.parts["judge"]) == (0.0, ItemStatus.ok, 0.0)
        assert "Score: <number" in fake.requests[0].body["messages"][-1]["content"]

    @pytest.mark.parametrize("reply", [
        "2+2=4, so the completion is wrong. Score: 0",
        "It is correct, I would give it 5 out of 5.",
        "Score: 1\nScore: 0",
    ])
    def test_no_score_or_two_scores_is_null_unparseable(self, fake, reply):
        fake.default = chat(reply)
        [got] = score(scorer_for(fake), [item()])
        assert got.reward is None and got.status is ItemStatus.error
        assert got.reason.startswith("unparseable judge reply")

    def test_structured_mode_asks_for_a_schema_and_ignores_prose_numbers(self, fake):
        fake.script(chat('{"reason": "2+2=4, so it is wrong", "score": 0}'),
                    chat("2+2=4\nScore: 0"))
        scorer = scorer_for(fake, structured=True, max_upstream_concurrency=1)
        json_reply, line_reply = score(scorer, [item(), item(reference="no")])
        assert json_reply.reward == 0.0 and json_reply.status is ItemStatus.ok
        assert line_reply.reward is None  # structured mode reads the JSON only
        assert fake.requests[0].body["response_format"]["type"] == "json_schema"


class TestStructuredParam:
    def test_a_request_can_ask_for_json_where_the_service_reads_score_lines(self, fake):
        fake.script(chat('{"reason": "one of 2 is wrong", "score": 0.5}'), chat("Score: 1"))
        scorer = scorer_for(fake, max_upstream_concurrency=1)
        [json_reply] = score(scorer, [item()], params=JudgeParams(structured=True))
        [line_reply] = score(scorer, [item()], params=JudgeParams(structured=False))
        assert (json_reply.reward, line_reply.reward) == (0.5, 1.0)
        assert "response_format" in fake.requests[0].body
        assert "response_format" not in fake.requests[1].body
