"""The policy model: loading with LoRA (`loading`), family fixes (`smolvlm_fix`), tiny builds (`tiny`)."""
