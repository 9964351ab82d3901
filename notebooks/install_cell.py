# Install: keep what the machine has, add only what is missing (silent when nothing is).
import importlib, importlib.util, os, pathlib, subprocess, sys
if importlib.util.find_spec("genhelpers") is None:
    here = pathlib.Path.cwd()
    checkout = next((p for p in [here, *here.parents] if (p / "genhelpers" / "__init__.py").is_file()), None)
    # Kaggle mounts an attached dataset at /kaggle/input/datasets/<owner>/<slug>/ (older: /kaggle/input/<slug>/);
    # on Colab, upload the wheel to /content or set GENHELPERS_SOURCE (a wheel path/URL or the repository's git URL)
    roots = [(pathlib.Path(os.environ.get("GENHELPERS_KAGGLE_INPUT", "/kaggle/input")), 5), (pathlib.Path("/content"), 1)]
    wheels = sorted(w for root, deep in roots for d in range(deep + 1) for w in root.glob("*/" * d + "genhelpers-*.whl"))
    source = os.environ.get("GENHELPERS_SOURCE") or (str(wheels[-1]) if wheels else None)
    if checkout:  # running inside a clone of the repository
        sys.path.insert(0, str(checkout))
    elif source:  # the wheel attached as a Kaggle dataset / uploaded to Colab, or GENHELPERS_SOURCE
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", source], check=True)
        importlib.invalidate_caches()
    else:
        raise ModuleNotFoundError(
            "genhelpers is not installed. On Kaggle: Add Input -> the dataset holding genhelpers-*.whl (built with "
            "`make wheel` or `genhelpers kaggle build`, see README). On Colab: upload genhelpers-*.whl to /content, or "
            "set os.environ['GENHELPERS_SOURCE'] to the wheel or 'git+https://…' of the repository. "
            "Elsewhere: `pip install -e .` in the repository.")
import genhelpers
genhelpers.ensure_stack()  # installs the tested diffusers/transformers/hub/accelerate together if anything is off
