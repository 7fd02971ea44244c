// The Java client follows a reconfig as ZooKeeper's manual says: it reads the membership with
// getConfig, hands the members' client addresses to updateServerList, and once the member it
// first knew is gone it fails over to one it learned of only from the config.
//
// Usage: java UpdateServerList HOST:PORT
// Prints "SERVERS <list>" once the list is set, waits for a line on stdin (the test stops the
// first member meanwhile), creates a znode through whichever member it reaches, prints PASS.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class UpdateServerList {
    private static final long WAIT_MS = 30_000;

    public static void main(String[] args) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(args[0], 10_000, event -> {
            if (event.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        });
        if (!connected.await(WAIT_MS, TimeUnit.MILLISECONDS)) {
            fail("not connected");
        }
        String config = new String(zk.getConfig(false, new Stat()), StandardCharsets.UTF_8);
        StringBuilder servers = new StringBuilder();
        for (String line : config.split("\n")) {
            int semicolon = line.indexOf(';');
            if (line.startsWith("server.") && semicolon >= 0) {
                if (servers.length() > 0) {
                    servers.append(',');
                }
                servers.append(line.substring(semicolon + 1));
            }
        }
        if (servers.length() == 0) {
            fail("no client address in the config:\n" + config);
        }
        zk.updateServerList(servers.toString());
        System.out.println("SERVERS " + servers);
        System.out.flush();
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
        String path = "/java-servers-" + ProcessHandle.current().pid();
        long deadline = System.currentTimeMillis() + WAIT_MS;
        while (true) {
            try {
                zk.create(path, new byte[] {'x'}, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                break;
            } catch (KeeperException.NodeExistsException created) {
                break; // an earlier attempt went through before its connection was lost
            } catch (KeeperException.ConnectionLossException lost) {
                if (System.currentTimeMillis() > deadline) {
                    fail("create after the first member left: " + lost);
                }
                Thread.sleep(100);
            }
        }
        zk.close();
        System.out.println("PASS");
    }

    private static void fail(String why) {
        System.out.println("FAIL: " + why);
        System.exit(1);
    }
}
