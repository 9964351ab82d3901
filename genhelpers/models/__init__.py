"""Our own model code, one module per paper's maths, where diffusers has none (MVDream, Zero123++,
Tune-A-Video's attention, DALL·E's dVAE, unCLIP's image encoder).

Importing this package is cheap: it only tells the hub which of our classes a published folder may name, by
module path, so that ``genhelpers.load`` can build them without the hub importing this package."""
from ..hub import classes

classes.register({
    "MVDreamPipeline": "genhelpers.models.mvdream",
    "MultiViewUNetModel": "genhelpers.models.mvdream_unet",
    "Zero123PlusPipeline": "genhelpers.models.zero123plus",
})
classes.register({"AnimateAnyonePipeline": "genhelpers.models.animate_anyone",  # animate_anyone notebook
                  "PoseGuider": "genhelpers.models.animate_anyone", "IPAdapterWeights": "genhelpers.models.ip_adapter"})
