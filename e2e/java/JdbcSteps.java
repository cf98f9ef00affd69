// MariaDB Connector/J (Debian's libmariadb-java) through the JDBC API, for e2e/test_jdbc.py:
// server-side prepared statements, batches, generated keys, multi-statements, transactions
// with autocommit off, streaming, Statement.cancel() (KILL QUERY from a second connection).
// Prints one line per step: "name: result" or "name: ERR code sqlstate".
//
//   java -cp mariadb-java-client.jar JdbcSteps.java PORT DATABASE
import java.sql.*;
import java.util.*;

public class JdbcSteps {
    interface Step {
        Object run() throws Exception;
    }

    static void step(String name, Step s) {
        String out;
        try {
            out = String.valueOf(s.run());
        } catch (SQLException e) {
            out = "ERR " + e.getErrorCode() + " " + e.getSQLState();
        } catch (Exception e) {
            out = "EXCEPTION " + e;
        }
        System.out.println(name + ": " + out);
    }

    static String rows(ResultSet rs) throws SQLException {
        int n = rs.getMetaData().getColumnCount();
        List<String> out = new ArrayList<>();
        while (rs.next()) {
            List<String> row = new ArrayList<>();
            for (int i = 1; i <= n; i++) row.add(rs.getString(i));
            out.add(String.join(",", row));
        }
        return String.join(" ", out);
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:mariadb://127.0.0.1:" + args[0] + "/" + args[1]
                + "?useServerPrepStmts=true&allowMultiQueries=true&connectTimeout=10000";
        try (Connection c = DriverManager.getConnection(url, "root", "")) {
            Statement st = c.createStatement();
            st.executeUpdate("drop table if exists e2e_jdbc");
            st.executeUpdate("create table e2e_jdbc (id int primary key auto_increment,"
                    + " a varchar(10), d decimal(6,2))");
            step("insert", () -> st.executeUpdate(
                    "insert into e2e_jdbc (a, d) values ('x', 1.5), ('y', -2.25), ('z', 0)"));
            step("generated key", () -> {
                st.executeUpdate("insert into e2e_jdbc (a) values ('k')",
                        Statement.RETURN_GENERATED_KEYS);
                ResultSet rs = st.getGeneratedKeys();
                rs.next();
                return rs.getLong(1);
            });
            // Connector/J asks for CLIENT_FOUND_ROWS: matched rows, changed or not.
            step("update", () -> st.executeUpdate("update e2e_jdbc set a = 'x' where id <= 2"));
            step("prepared select", () -> {
                PreparedStatement ps = c.prepareStatement(
                        "select * from e2e_jdbc where id >= ? order by id");
                ps.setInt(1, 2);
                return rows(ps.executeQuery());
            });
            step("prepared metadata", () -> {
                ResultSetMetaData md = c.prepareStatement(
                        "select id, a, d from e2e_jdbc where id = ?").getMetaData();
                return md.getColumnCount() + " " + md.getColumnTypeName(1) + " "
                        + md.getColumnTypeName(2) + " " + md.getColumnTypeName(3);
            });
            step("batch", () -> {
                PreparedStatement ps = c.prepareStatement(
                        "insert into e2e_jdbc (a, d) values (?, ?)");
                for (int i = 0; i < 3; i++) {
                    ps.setString(1, "b" + i);
                    ps.setBigDecimal(2, new java.math.BigDecimal(i + ".5"));
                    ps.addBatch();
                }
                return Arrays.toString(ps.executeBatch());
            });
            step("multi", () -> {
                boolean r = st.execute("select count(*) from e2e_jdbc;"
                        + " update e2e_jdbc set d = d + 1 where id = 1; select 'two'");
                List<String> out = new ArrayList<>();
                do {
                    out.add(r ? rows(st.getResultSet()) : "updated " + st.getUpdateCount());
                    r = st.getMoreResults();
                } while (r || st.getUpdateCount() != -1);
                return String.join(" | ", out);
            });
            step("multi error", () -> st.execute("select 1; select * from e2e_jdbc_missing"));
            step("after error", () -> rows(st.executeQuery("select 'usable'")));
            // Connector/J sends ROLLBACK only when the server says a transaction is open.
            step("rollback", () -> {
                c.setAutoCommit(false);
                st.executeUpdate("insert into e2e_jdbc (a) values ('rb')");
                c.rollback();
                c.setAutoCommit(true);
                return rows(st.executeQuery("select count(*) from e2e_jdbc where a = 'rb'"));
            });
            step("commit", () -> {
                c.setAutoCommit(false);
                st.executeUpdate("insert into e2e_jdbc (a) values ('cm')");
                c.commit();
                c.setAutoCommit(true);
                return rows(st.executeQuery("select count(*) from e2e_jdbc where a = 'cm'"));
            });
            step("streaming", () -> {
                Statement s = c.createStatement(ResultSet.TYPE_FORWARD_ONLY,
                        ResultSet.CONCUR_READ_ONLY);
                s.setFetchSize(Integer.MIN_VALUE);
                ResultSet rs = s.executeQuery("select id from e2e_jdbc order by id");
                int n = 0;
                while (rs.next()) n++;
                rs.close();
                return n;
            });
            step("cancel", () -> {
                Statement s = c.createStatement();
                Thread t = new Thread(() -> {
                    try {
                        Thread.sleep(500);
                        s.cancel();
                    } catch (Exception e) {
                        // the step reports what the query got
                    }
                });
                t.start();
                try {
                    return rows(s.executeQuery("select sleep(5)"));
                } finally {
                    t.join();
                }
            });
            step("after cancel", () -> rows(st.executeQuery("select 'usable'")));
            step("valid", () -> c.isValid(5));
            st.executeUpdate("drop table e2e_jdbc");
        }
    }
}
