"""Where am I: the machine (Kaggle / Colab / local, GPUs, dtype), the recorded machine profiles, the library stack
(install from the tested versions or a wheelhouse) and the folders genhelpers reads and writes (cache, Kaggle's
input mounts). Imports nothing of genhelpers but ``errors``."""
