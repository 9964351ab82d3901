"""Where the weights come from and how they fit: the catalog of published models, their full-size configs
(counted on the meta device), weight resolution (local folder, Kaggle mounts, kagglehub, the Hugging Face hub),
the loader, memory plans and version compatibility. Never imports ``models`` or ``twins``: our own model classes
and the twins register themselves here (``classes.register``, ``weights.register_twins``)."""
