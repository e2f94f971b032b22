"""vqa_accuracy: how right a short answer is against human answers (VQA accuracy, ANLS, exact, ...)."""
