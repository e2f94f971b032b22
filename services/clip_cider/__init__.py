"""clip_cider: the explanation reward, CLIPScore against the image plus CIDEr-D against references."""
