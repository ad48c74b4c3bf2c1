#!/usr/bin/env python3
"""--info reports every embedded section as the file holds it. This script
finds the sections itself (ELF symbols qm_<name>_start/_end, as
integrity.py does), hashes each payload with an xxh3-128 of its own (the
`xxhash` module, else libxxhash through ctypes) and checks that --info
prints, per section, the payload size and a hash equal to both that hash
and the 16-byte trailer; for the CUDA section also the images and kernel
names parsed from its header (layout: include/qc/cuda.h). Then it damages
the tokenizer and checks --no-verify --info still shows the stored trailer
(so the value printed is the trailer, not a fresh hash) with
"verified": false. Usage: info.py EXE SCRATCH_DIR"""
import ctypes, json, os, struct, subprocess, sys

from elfsyms import qm_symbols


def fail(msg):
    sys.exit(f"FAIL: {msg}")


def xxh3_128_impl():
    try:
        import xxhash
        return "xxhash module", xxhash.xxh3_128_hexdigest
    except ImportError:
        pass

    class H(ctypes.Structure):
        _fields_ = [("low64", ctypes.c_uint64), ("high64", ctypes.c_uint64)]
    try:
        lib = ctypes.CDLL("libxxhash.so.0")
    except OSError as e:
        fail(f"no xxh3-128 to check with: neither the xxhash module nor libxxhash.so.0 ({e}); run tools/deps.sh")
    lib.XXH3_128bits.restype = H
    lib.XXH3_128bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

    def hexdigest(b):
        h = lib.XXH3_128bits(bytes(b), len(b))
        return f"{h.high64:016x}{h.low64:016x}"  # canonical: big-endian, high half first
    return "libxxhash.so.0", hexdigest


how, xxh3 = xxh3_128_impl()
# known answers (xxHash 0.8 reference), so a wrong binding cannot pass
for data, want in ((b"", "99aa06d3014798d86001c324468d497f"), (b"abc", "06b05ab6733a618578af5f94892f3950")):
    if xxh3(data) != want:
        fail(f"{how}: xxh3-128({data!r}) = {xxh3(data)}, expected {want}")

exe, scratch = sys.argv[1], sys.argv[2]
syms, _off = qm_symbols(exe)


def off(addr):
    o = _off(addr)
    if o is None:
        fail(f"address {addr:#x} in no section")
    return o


data = open(exe, "rb").read()
names = [s for s in ("weights", "tokenizer", "info", "cuda") if f"qm_{s}_start" in syms]
span = {s: (off(syms[f"qm_{s}_start"]), off(syms[f"qm_{s}_end"] - 1) + 1) for s in names}


def run_info(path, *flags):
    r = subprocess.run([path, "--info", *flags], capture_output=True, text=True)
    if r.returncode != 0 or r.stderr:
        fail(f"{path} --info {' '.join(flags)}: exit {r.returncode}, stderr {r.stderr!r}")
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        fail(f"--info is not JSON ({e}): {r.stdout[:300]!r}")


d = run_info(exe)
if d.get("verified") is not True:
    fail(f"verified: {d.get('verified')!r}")
got = d.get("sections", {})
if sorted(got) != sorted(names):
    fail(f"sections {sorted(got)}, the file has {sorted(names)}")
for s in names:
    lo, hi = span[s]
    payload, trailer = data[lo:hi - 16], data[hi - 16:hi].hex()
    h = xxh3(payload)
    if h != trailer:
        fail(f"{s}: the file's trailer {trailer} is not the xxh3-128 of its {len(payload)} bytes ({h})")
    if got[s].get("bytes") != len(payload) or got[s].get("xxh3_128") != h:
        fail(f"{s}: --info says {got[s].get('bytes')} bytes, {got[s].get('xxh3_128')}; "
             f"the file holds {len(payload)} bytes hashing to {h}")
    print(f"ok: {s}: {len(payload)} bytes, xxh3-128 {h}")
if d["weights_xxh3_128"] != got["weights"]["xxh3_128"]:
    fail(f"weights_xxh3_128 {d['weights_xxh3_128']} (from qcc) != the weights trailer")

if "cuda" in names:
    lo, hi = span["cuda"]
    p = data[lo:hi - 16]
    if p[:8] != b"QCCUDA01":
        fail(f"cuda section magic {p[:8]!r}")
    n_images, n_kernels = struct.unpack_from("<II", p, 12)
    names_off, names_len = struct.unpack_from("<QQ", p, 40)
    archs = []
    for i in range(n_images):
        kind, arch = struct.unpack_from("<II", p, 64 + 24 * i)
        archs.append(f"{'compute' if kind else 'sm'}_{arch}")
    kernels = p[names_off:names_off + names_len].split(b"\0")[:-1]
    kernels = [k.decode() for k in kernels]
    c = got["cuda"]
    if c.get("archs") != archs or c.get("kernels") != n_kernels or c.get("kernel_names") != kernels:
        fail(f"cuda: --info says archs {c.get('archs')}, {c.get('kernels')} kernels "
             f"{(c.get('kernel_names') or [])[:4]}...; the section holds {archs}, {n_kernels} {kernels[:4]}...")
    if len(kernels) != n_kernels or d.get("cuda_archs") != archs or d.get("cuda_kernels") != kernels:
        fail("cuda: the section disagrees with what qcc recorded (cuda_archs, cuda_kernels)")
    print(f"ok: cuda: {archs}, {n_kernels} kernels")

# A damaged tokenizer: refused at start; with --no-verify, --info shows the
# stored trailer, which no longer matches the bytes.
lo, hi = span["tokenizer"]
bad = bytearray(data)
bad[lo + (hi - 16 - lo) // 2] ^= 0x40
path = os.path.join(scratch, "damaged.bin")
with open(path, "wb") as f:
    f.write(bad)
os.chmod(path, 0o755)
r = subprocess.run([path, "--info"], capture_output=True, text=True)
if r.returncode != 1 or "tokenizer section is corrupted" not in r.stderr or r.stdout:
    fail(f"damaged tokenizer, --info: exit {r.returncode}, stderr {r.stderr!r}, stdout {r.stdout[:80]!r}")
d2 = run_info(path, "--no-verify")
t = d2["sections"]["tokenizer"]["xxh3_128"]
if d2["verified"] is not False or t != got["tokenizer"]["xxh3_128"] or t == xxh3(bad[lo:hi - 16]):
    fail(f"damaged tokenizer, --no-verify --info: verified {d2['verified']}, tokenizer {t}")
print(f"ok: every hash --info prints is the section's own ({how})")
