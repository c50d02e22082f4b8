"""Mark a version requirement of an ELF64 little-endian file weak (VER_FLG_WEAK).

Usage: python3 weak_version.py FILE VERSION   (e.g. GLIBC_2.38)
The dynamic loader then accepts the file when that version is missing (the
symbols that needed it must then come from elsewhere); e2e/bench/install.sh uses it with shim.c so the prebuilt
uWebSockets.js binary loads on a glibc older than 2.38.
"""
import struct, sys
path, want = sys.argv[1], sys.argv[2].encode()
b = bytearray(open(path, "rb").read())
shoff, = struct.unpack_from("<Q", b, 0x28)
shentsize, shnum = struct.unpack_from("<HH", b, 0x3A)
secs = [struct.unpack_from("<IIQQQQIIQQ", b, shoff + i * shentsize) for i in range(shnum)]
done = 0
for name, typ, flags, addr, off, size, link, info, align, entsize in secs:
    if typ != 0x6ffffffe:  # SHT_GNU_verneed
        continue
    stroff = secs[link][4]
    p = off
    for _ in range(info):
        vn_version, vn_cnt, vn_file, vn_aux, vn_next = struct.unpack_from("<HHIII", b, p)
        a = p + vn_aux
        for _ in range(vn_cnt):
            vna_hash, vna_flags, vna_other, vna_name, vna_next = struct.unpack_from("<IHHII", b, a)
            nm = bytes(b[stroff + vna_name:b.index(0, stroff + vna_name)])
            if nm == want:
                struct.pack_into("<H", b, a + 4, vna_flags | 2)
                done += 1
            a += vna_next
        p += vn_next
open(path, "wb").write(b)
print(f"{done} requirement(s) of {want.decode()} marked weak")
sys.exit(0 if done else 1)
