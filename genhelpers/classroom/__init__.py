"""Small models trained on the CPU in minutes, and their data: handwritten digits (scikit-learn's), a small CLIP,
CLIP filtering of a planted pool, a video CLIP (Open-VCLIP's interpolation), text-to-motion retrieval on
generated 22-joint skeletons."""
