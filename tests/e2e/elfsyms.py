"""Where the executable's embedded sections lie in its file: the qm_* symbols
(nm) and virtual address -> file offset through the section headers
(readelf). Shared by integrity.py and info.py."""
import subprocess


def qm_symbols(exe):
    """({name: address} of the qm_* symbols, off(address) -> file offset or None)."""
    syms = {}
    for line in subprocess.run(["nm", exe], capture_output=True, text=True, check=True).stdout.splitlines():
        f = line.split()
        if len(f) == 3 and f[2].startswith("qm_"):
            syms[f[2]] = int(f[0], 16)
    secs = []
    for line in subprocess.run(["readelf", "-SW", exe], capture_output=True, text=True, check=True).stdout.splitlines():
        f = line.replace("[ ", "[").split()
        if len(f) > 6 and f[0].startswith("[") and f[2] == "PROGBITS":
            secs.append((int(f[3], 16), int(f[4], 16), int(f[5], 16)))

    def off(addr):
        for a, o, n in secs:
            if a <= addr < a + n:
                return addr - a + o
        return None

    return syms, off
