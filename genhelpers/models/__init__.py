"""Our own model code, one module per paper's maths, where diffusers has none (MVDream, Zero123++,
Tune-A-Video's attention, DALL·E's dVAE, unCLIP's image encoder).

Importing this package is cheap: it only tells the hub which of our classes a published folder may name, by
module path, so that ``genhelpers.load`` can build them without the hub importing this package."""
from ..hub import classes

classes.register({
    "CatVTONPipeline": "genhelpers.models.catvton",  # virtual_tryon
    "MVDreamPipeline": "genhelpers.models.mvdream",
    "MultiViewUNetModel": "genhelpers.models.mvdream_unet",
    "Zero123PlusPipeline": "genhelpers.models.zero123plus",
    "IPAdapterWeights": "genhelpers.models.ipadapter_weights",  # stylecrafter: h94/IP-Adapter's published file
    # mvdiffusion notebook
    "MVDiffusionPipeline": "genhelpers.models.mvdiffusion",
    "MVDiffusionCAA": "genhelpers.models.mvdiffusion_caa",
})
classes.register({"AnimateAnyonePipeline": "genhelpers.models.animate_anyone",  # animate_anyone notebook
                  "PoseGuider": "genhelpers.models.animate_anyone"})
