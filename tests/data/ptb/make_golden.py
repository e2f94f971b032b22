"""Regenerate ptb_golden.jsonl: pycocoevalcap's own PTBTokenizer (Stanford CoreNLP 3.4.1) over sentences.txt.

Needs Java (`apt-get install -y default-jre-headless`) and pycocoevalcap==1.2. The wrapper writes
a temporary file beside its jar, so it runs from a copy of its package directory, unmodified.

    python tests/data/ptb/make_golden.py
"""

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

import pycocoevalcap.tokenizer.ptbtokenizer as wrapper

HERE = Path(__file__).parent


def main() -> None:
    sentences = (HERE / "sentences.txt").read_text(encoding="utf-8").splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(shutil.copytree(Path(wrapper.__file__).parent, Path(tmp) / "tokenizer"))
        spec = importlib.util.spec_from_file_location("ptb_copy", copy / "ptbtokenizer.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        captions = {i: [{"caption": s}] for i, s in enumerate(sentences)}
        tokenized = module.PTBTokenizer().tokenize(captions)
    with open(HERE / "ptb_golden.jsonl", "w", encoding="utf-8") as out:
        for i, sentence in enumerate(sentences):
            tokens = tokenized[i][0].split()
            out.write(json.dumps({"sentence": sentence, "tokens": tokens}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
