# Written by weir: fetches the pointed code release of this deployment, then runs the image's
# entry point (/app/run_app.sh, or WEIR_IMAGE_ENTRYPOINT) with this program's arguments.
# Reads <prefix>/current, then that release's manifest, then each file by its hash, checks
# each hash, writes the project next to its destination and moves it into place. Puts the
# release's weir runtime (<project>/weir) on PYTHONPATH. Uses only Python's standard library
# (the Mage image has Python) and the instance's own identity.
import hashlib, json, os, shutil, sys, urllib.parse, urllib.request

bucket = os.environ["WEIR_RELEASE_BUCKET"]
prefix = os.environ.get("WEIR_RELEASE_PREFIX", "code").strip("/")
dest = os.environ.get("WEIR_RELEASE_DIR") or os.path.join("/home/src", os.environ.get("USER_CODE_PATH") or "default_repo")
emulator = os.environ.get("STORAGE_EMULATOR_HOST", "")
base = (emulator if "://" in emulator else "http://" + emulator) if emulator else "https://storage.googleapis.com"
headers = {}
if not emulator:
    meta = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
    answer = urllib.request.urlopen(urllib.request.Request(meta, headers={"Metadata-Flavor": "Google"}), timeout=30)
    headers["Authorization"] = "Bearer " + json.load(answer)["access_token"]


def get(name):
    url = base.rstrip("/") + "/storage/v1/b/" + urllib.parse.quote(bucket, safe="") + "/o/" + urllib.parse.quote(prefix + "/" + name, safe="") + "?alt=media"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60).read()


release = json.loads(get("current"))["release"]
manifest = json.loads(get("releases/" + release + ".json"))
staging = dest + ".weir-" + release
shutil.rmtree(staging, ignore_errors=True)
for path, entry in sorted(manifest["files"].items()):
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        sys.exit("weir: release " + release + " names a file outside the project: " + path)
    data = get("objects/" + entry["sha256"])
    if hashlib.sha256(data).hexdigest() != entry["sha256"] or len(data) != entry["size"]:
        sys.exit("weir: release " + release + ": the content of " + path + " does not match its hash")
    target = os.path.join(staging, *parts)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as f:
        f.write(data)
os.makedirs(staging, exist_ok=True)
shutil.rmtree(dest, ignore_errors=True)
os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
os.rename(staging, dest)
print("weir: release " + release + " in " + dest, file=sys.stderr)
runtime = os.path.join(dest, "weir")
if os.path.isdir(runtime):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (runtime, os.environ.get("PYTHONPATH")) if p)
entry = os.environ.get("WEIR_IMAGE_ENTRYPOINT") or "/app/run_app.sh"
sys.stderr.flush()
os.execvp(entry, [entry] + sys.argv[1:])
