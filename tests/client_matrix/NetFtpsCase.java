// The client matrix's commons-net case (tests/client_matrix.rs): Apache
// commons-net's FTPSClient (Debian's libcommons-net-java) over explicit FTPS:
// mkdir, upload of the big file and the tree, list, download, rename, delete,
// and resume both ways (REST + STOR, REST + RETR). It opens each data
// connection with a new TLS session, so the gateway runs with
// `require_ssl_reuse = false`. Arguments: port user password payload res out.
import java.io.*;
import java.nio.file.*;
import java.util.Arrays;
import org.apache.commons.net.ftp.*;
import org.apache.commons.net.util.TrustManagerUtils;

public class NetFtpsCase {
    static FTPSClient c;

    static void check(boolean ok, String what) {
        if (!ok) throw new RuntimeException(what + ": " + c.getReplyString());
    }

    public static void main(String[] a) throws Exception {
        Path payload = Paths.get(a[3]), res = Paths.get(a[4]), out = Paths.get(a[5]);
        c = new FTPSClient("TLS", false);
        c.setTrustManager(TrustManagerUtils.getAcceptAllTrustManager());
        c.setDefaultTimeout(60000);
        c.connect("127.0.0.1", Integer.parseInt(a[0]));
        check(c.login(a[1], a[2]), "login");
        c.execPBSZ(0);
        c.execPROT("P");
        c.enterLocalPassiveMode();
        check(c.setFileType(FTP.BINARY_FILE_TYPE), "TYPE I");
        check(c.makeDirectory("m"), "MKD m");
        try (InputStream in = Files.newInputStream(payload.resolve("big.bin"))) {
            check(c.storeFile("m/big.bin", in), "STOR big");
        }
        check(c.makeDirectory("m/tree"), "MKD m/tree");
        String[] dirs = payload.resolve("tree").toFile().list();
        Arrays.sort(dirs);
        for (String d : dirs) {
            check(c.makeDirectory("m/tree/" + d), "MKD " + d);
            for (String n : payload.resolve("tree").resolve(d).toFile().list()) {
                try (InputStream in = Files.newInputStream(payload.resolve("tree").resolve(d).resolve(n))) {
                    check(c.storeFile("m/tree/" + d + "/" + n, in), "STOR " + n);
                }
            }
        }
        for (FTPFile f : c.listFiles("m/tree/d00")) System.out.println("NAME " + f.getName());
        try (OutputStream o = Files.newOutputStream(out.resolve("big.bin"))) {
            check(c.retrieveFile("m/big.bin", o), "RETR big");
        }
        for (String d : dirs) {
            Files.createDirectories(out.resolve("tree").resolve(d));
            for (FTPFile f : c.listFiles("m/tree/" + d)) {
                if (!f.isFile()) continue;
                try (OutputStream o = Files.newOutputStream(out.resolve("tree").resolve(d).resolve(f.getName()))) {
                    check(c.retrieveFile("m/tree/" + d + "/" + f.getName(), o), "RETR " + f.getName());
                }
            }
        }
        check(c.rename("m/big.bin", "m/renamed.bin"), "rename");
        check(c.deleteFile("m/tree/d00/f00.bin"), "DELE");
        // Resume: the first part arrived before a cut; REST + STOR sends the rest.
        try (InputStream in = Files.newInputStream(res.resolve("part.bin"))) {
            check(c.storeFile("m/resume.bin", in), "STOR part");
        }
        long have = Files.size(res.resolve("part.bin"));
        byte[] all = Files.readAllBytes(res.resolve("resume.bin"));
        c.setRestartOffset(have);
        check(c.storeFile("m/resume.bin", new ByteArrayInputStream(all, (int) have, all.length - (int) have)), "REST+STOR");
        Path local = out.resolve("resume.bin");
        c.setRestartOffset(Files.size(local));
        try (OutputStream o = Files.newOutputStream(local, StandardOpenOption.APPEND)) {
            check(c.retrieveFile("m/resume.bin", o), "REST+RETR");
        }
        c.logout();
        c.disconnect();
        System.out.println("DONE");
    }
}
