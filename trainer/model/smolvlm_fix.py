"""A narrow fix for SmolVLM's `inputs_merger` in transformers 5.20.2, applied when a SmolVLM model is loaded.

The bug: `SmolVLMModel.inputs_merger` reshapes the image features into blocks of
`vision_config.patch_size` (14) rows, where a block is one tile's tokens (`image_seq_len`, 81 for
SmolVLM2-2.2B: 384-px tiles, patch 14, pixel-shuffle 3). Any image whose token count is not a
multiple of 14 fails on the first forward pass:
`RuntimeError: shape '[-1, 14, 64]' is invalid for input of size ...`. TRL computes log-probs with
transformers even when vLLM generates, so GRPO on SmolVLM2 breaks at step 1.

The merge itself needs no blocks: the k-th `<image>` token of the batch takes the k-th row of the
flattened features, in order — which is what the replacement does (a masked scatter).

Why a patch and not a pin: vLLM 0.33 accepts transformers >=5.16.1,<5.21, and 5.20.2 is the newest
release in that range; the bug is in all of them. The patch checks the installed source and only
replaces the method while the buggy line is there, so it turns itself off once transformers is
fixed (tests/trainer/test_families.py fails then, asking to delete this module).
"""

from __future__ import annotations

import inspect
import logging

log = logging.getLogger(__name__)

_BUGGY_LINE = "image_hidden_states.view(-1, patch_size, image_hidden_states.shape[-1])"


def needs_fix() -> bool:
    """Whether the installed `SmolVLMModel.inputs_merger` still blocks features by patch size."""
    from transformers.models.smolvlm import modeling_smolvlm

    merger = getattr(modeling_smolvlm.SmolVLMModel.inputs_merger, "__wrapped_original__",
                     modeling_smolvlm.SmolVLMModel.inputs_merger)
    return _BUGGY_LINE in inspect.getsource(merger)


def apply() -> bool:
    """Replace the merger if the installed one has the bug; returns whether the fix is in place."""
    from transformers.models.smolvlm import modeling_smolvlm

    cls = modeling_smolvlm.SmolVLMModel
    if cls.inputs_merger is _inputs_merger:
        return True
    if not needs_fix():
        log.debug("transformers' SmolVLM inputs_merger no longer has the patch-size bug; not patching")
        return False
    _inputs_merger.__wrapped_original__ = cls.inputs_merger
    cls.inputs_merger = _inputs_merger
    log.info("patched SmolVLMModel.inputs_merger (transformers blocks image tokens by patch size; "
             "see trainer/model/smolvlm_fix.py)")
    return True


def _inputs_merger(self, input_ids, inputs_embeds, image_hidden_states):
    """Put the image features, in order, where the `<image>` tokens are."""
    import torch

    if input_ids is None:
        image_embed = self.get_input_embeddings()(
            torch.full((), self.config.image_token_id, dtype=torch.long, device=inputs_embeds.device)
        )
        image_mask = (inputs_embeds == image_embed).all(dim=-1)
    else:
        image_mask = input_ids == self.config.image_token_id
    features = image_hidden_states.reshape(-1, image_hidden_states.shape[-1]).to(inputs_embeds.dtype)
    if int(image_mask.sum()) != features.shape[0]:
        raise ValueError(f"{int(image_mask.sum())} <image> tokens in the text but {features.shape[0]} "
                         "image feature rows: the processor and the model disagree on image_seq_len")
    return inputs_embeds.masked_scatter(image_mask.unsqueeze(-1), features)
