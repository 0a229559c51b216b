// The client matrix's JSch case (tests/client_matrix.rs): Debian's libjsch-java
// (JSch 0.1.5x, inside many Java clients) over SFTP: mkdir, upload of the big
// file and the tree, list, download, rename, delete, and resume both ways
// (ChannelSftp.RESUME). Arguments: port user password payload res out.
import com.jcraft.jsch.*;
import java.io.File;
import java.util.Arrays;
import java.util.Vector;

public class JschCase {
    public static void main(String[] a) throws Exception {
        String payload = a[3], res = a[4], out = a[5];
        JSch jsch = new JSch();
        Session s = jsch.getSession(a[1], "127.0.0.1", Integer.parseInt(a[0]));
        s.setPassword(a[2]);
        s.setConfig("StrictHostKeyChecking", "no");
        s.setConfig("PreferredAuthentications", "password");
        s.connect(30000);
        ChannelSftp c = (ChannelSftp) s.openChannel("sftp");
        c.connect(30000);
        c.mkdir("m");
        c.put(payload + "/big.bin", "m/big.bin");
        c.mkdir("m/tree");
        String[] dirs = new File(payload, "tree").list();
        Arrays.sort(dirs);
        for (String d : dirs) {
            c.mkdir("m/tree/" + d);
            for (String n : new File(payload + "/tree", d).list()) {
                c.put(payload + "/tree/" + d + "/" + n, "m/tree/" + d + "/" + n);
            }
        }
        for (Object o : c.ls("m/tree/d00")) {
            System.out.println("NAME " + ((ChannelSftp.LsEntry) o).getFilename());
        }
        c.get("m/big.bin", out + "/big.bin");
        for (String d : dirs) {
            new File(out + "/tree/" + d).mkdirs();
            for (Object o : c.ls("m/tree/" + d)) {
                String n = ((ChannelSftp.LsEntry) o).getFilename();
                if (n.startsWith(".")) continue;
                c.get("m/tree/" + d + "/" + n, out + "/tree/" + d + "/" + n);
            }
        }
        c.rename("m/big.bin", "m/renamed.bin");
        c.rm("m/tree/d00/f00.bin");
        c.put(res + "/part.bin", "m/resume.bin");
        c.put(res + "/resume.bin", "m/resume.bin", null, ChannelSftp.RESUME);
        c.get("m/resume.bin", out + "/resume.bin", null, ChannelSftp.RESUME);
        c.disconnect();
        s.disconnect();
        System.out.println("DONE");
    }
}
