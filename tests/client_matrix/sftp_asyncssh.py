"""The client matrix's asyncssh case (tests/client_matrix.rs): mkdir, upload of
the big file and the tree (put recurse), list, download (get recurse), rename,
delete. asyncssh has no resume.
Arguments: port user password payload res out."""
import asyncio, os, sys, asyncssh

port, user, password, payload, res, out = sys.argv[1:7]

async def main():
    async with asyncssh.connect("127.0.0.1", port=int(port), username=user, password=password,
                                known_hosts=None, client_keys=None) as conn:
        async with conn.start_sftp_client() as s:
            await s.mkdir("m")
            await s.put(os.path.join(payload, "big.bin"), "m/big.bin")
            await s.put(os.path.join(payload, "tree"), "m/tree", recurse=True)
            for name in await s.listdir("m/tree/d00"):
                print("NAME", name)
            await s.get("m/big.bin", os.path.join(out, "big.bin"))
            await s.get("m/tree", os.path.join(out, "tree"), recurse=True)
            await s.rename("m/big.bin", "m/renamed.bin")
            await s.remove("m/tree/d00/f00.bin")
    print("DONE")

asyncio.run(main())
