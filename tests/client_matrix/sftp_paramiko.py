"""The client matrix's paramiko case (tests/client_matrix.rs): mkdir, upload of
the big file and the tree, list, download with SFTPClient.get()'s defaults (many
read requests in flight), rename, delete. paramiko has no resume.
Arguments: port user password payload res out."""
import os, sys, paramiko

port, user, password, payload, res, out = sys.argv[1:7]
t = paramiko.Transport(("127.0.0.1", int(port)))
t.connect(username=user, password=password)
s = paramiko.SFTPClient.from_transport(t)
s.mkdir("m")
s.put(os.path.join(payload, "big.bin"), "m/big.bin")
tree = os.path.join(payload, "tree")
s.mkdir("m/tree")
for d in sorted(os.listdir(tree)):
    s.mkdir(f"m/tree/{d}")
    for f in sorted(os.listdir(os.path.join(tree, d))):
        s.put(os.path.join(tree, d, f), f"m/tree/{d}/{f}")
for name in s.listdir("m/tree/d00"):
    print("NAME", name)
s.get("m/big.bin", os.path.join(out, "big.bin"))
for d in s.listdir("m/tree"):
    os.makedirs(os.path.join(out, "tree", d), exist_ok=True)
    for f in s.listdir(f"m/tree/{d}"):
        s.get(f"m/tree/{d}/{f}", os.path.join(out, "tree", d, f))
s.rename("m/big.bin", "m/renamed.bin")
s.remove("m/tree/d00/f00.bin")
s.close()
t.close()
print("DONE")
