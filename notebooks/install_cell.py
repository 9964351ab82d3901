# Install: keep what the machine has, add only what you chose (silent when nothing is missing).
import hashlib, importlib, importlib.util, json, os, pathlib, subprocess, sys
if importlib.util.find_spec("genhelpers") is None:
    here = pathlib.Path.cwd()
    checkout = next((p for p in [here, *here.parents] if (p / "genhelpers" / "__init__.py").is_file()), None)
    source = os.environ.get("GENHELPERS_SOURCE")  # Colab/elsewhere: a wheel path or URL, or git+https://… you chose
    # Kaggle: only the dataset you name in GENHELPERS_DATASET ('<owner>/<slug>'); by default the one attached
    # dataset called genhelpers-wheel (mounted at /kaggle/input/datasets/<owner>/<slug>/, older: /kaggle/input/<slug>/)
    named = os.environ.get("GENHELPERS_DATASET", "genhelpers-wheel").strip("/")
    owner, _, slug = named.rpartition("/")
    root = pathlib.Path(os.environ.get("GENHELPERS_KAGGLE_INPUT", "/kaggle/input"))
    tops = [p for p in [*sorted(root.glob(f"datasets/{owner or '*'}/{slug}")), *([] if owner else [root / slug])]
            if p.is_dir() and slug not in ("", ".", "..")]
    uploads = sorted(pathlib.Path("/content").glob("genhelpers-*.whl"))  # Colab: a wheel you uploaded yourself
    if checkout:  # running inside a clone of the repository
        sys.path.insert(0, str(checkout))
    elif source:
        if source.startswith("-"):
            raise ValueError(f"GENHELPERS_SOURCE={source!r} is read by pip as an option: give a wheel or git URL")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", source], check=True)
        print(f"genhelpers installed from GENHELPERS_SOURCE={source}")
    elif len(tops) > 1:
        raise ModuleNotFoundError(f"{len(tops)} attached datasets are called {slug!r} ({', '.join(map(str, tops))}): "
                                  f"detach the ones you did not mean, or name yours: "
                                  f"os.environ['GENHELPERS_DATASET'] = '<owner>/{slug}'")
    elif tops or len(uploads) == 1:
        top = tops[0] if tops else None
        wheels = sorted(top.glob("genhelpers-*.whl")) if top else uploads
        if len(wheels) != 1:
            raise ModuleNotFoundError(f"{top} holds {len(wheels)} genhelpers wheels, not one: rebuild it with "
                                      f"`genhelpers kaggle build`")
        digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
        if top is not None:  # a dataset: the wheel must be the one its build recorded
            record = top / "hashes.json"
            recorded = json.loads(record.read_text()).get("files", {}) if record.is_file() else {}
            if recorded.get(wheels[0].name) != digest:
                raise ModuleNotFoundError(f"{wheels[0]} does not match the SHA-256 recorded in {record}: it is not "
                                          f"what `genhelpers kaggle build` wrote, so it is not installed")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", str(wheels[0])], check=True)
        print(f"genhelpers installed from {wheels[0]} (SHA-256 {digest[:16]}…"
              + (", as its dataset recorded)" if top else ", uploaded by you)"))
    else:
        raise ModuleNotFoundError(
            "genhelpers is not installed. On Kaggle: Add Input -> the dataset holding genhelpers-*.whl (built with "
            "`genhelpers kaggle build`, see README; another name: set os.environ['GENHELPERS_DATASET'] = "
            "'<owner>/<slug>'). On Colab: upload genhelpers-*.whl to /content, or set "
            "os.environ['GENHELPERS_SOURCE'] to the wheel or 'git+https://…' of the repository. "
            "Elsewhere: `pip install -e .` in the repository.")
    importlib.invalidate_caches()
import genhelpers
genhelpers.ensure_stack()  # installs the tested diffusers/transformers/hub/accelerate together if anything is off
