//! The one error that reaches a client: a MySQL error code, SQLSTATE and message.
//!
//! Every layer (wire, plan, exec) converts its failures into a [`SqlError`] exactly once; the
//! response writer turns it into one ERR packet. Constructors are named after the situation so
//! call sites never spell a code/SQLSTATE pair by hand.

use std::fmt;

/// A MySQL error as sent in an ERR packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlError {
    pub code: u16,
    pub state: [u8; 5],
    pub message: String,
}

/// MySQL error codes used by shardgate (see DESIGN section 3).
pub mod codes {
    pub const ER_CON_COUNT_ERROR: u16 = 1040;
    pub const ER_DBACCESS_DENIED: u16 = 1044;
    pub const ER_ACCESS_DENIED: u16 = 1045;
    pub const ER_NO_DB_ERROR: u16 = 1046;
    pub const ER_UNKNOWN_COM_ERROR: u16 = 1047;
    pub const ER_BAD_DB_ERROR: u16 = 1049;
    pub const ER_TABLE_EXISTS: u16 = 1050;
    pub const ER_BAD_FIELD: u16 = 1054;
    pub const ER_DUP_ENTRY: u16 = 1062;
    pub const ER_PARSE_ERROR: u16 = 1064;
    pub const ER_EMPTY_QUERY: u16 = 1065;
    pub const ER_NO_SUCH_THREAD: u16 = 1094;
    pub const ER_UNKNOWN_ERROR: u16 = 1105;
    pub const ER_NET_PACKET_TOO_LARGE: u16 = 1153;
    pub const ER_NET_READ_ERROR: u16 = 1158;
    pub const ER_NO_SUCH_TABLE: u16 = 1146;
    pub const ER_NOT_SUPPORTED_YET: u16 = 1235;
    pub const ER_WRONG_ARGUMENTS: u16 = 1210;
    pub const ER_UNKNOWN_STMT_HANDLER: u16 = 1243;
    pub const ER_QUERY_INTERRUPTED: u16 = 1317;
    pub const ER_OPERAND_COLUMNS: u16 = 1241;
    pub const ER_CANT_DO_THIS_DURING_AN_TRANSACTION: u16 = 1179;
    pub const ER_OPTION_PREVENTS_STATEMENT: u16 = 1290;
    pub const ER_WRONG_VALUE_COUNT_ON_ROW: u16 = 1136;
    pub const ER_BAD_NULL_ERROR: u16 = 1048;
    pub const ER_NON_UNIQ_ERROR: u16 = 1052;
    pub const ER_BAD_TABLE_ERROR: u16 = 1051;
    pub const ER_DIVISION_BY_ZERO: u16 = 1365;
    pub const ER_TRUNCATED_WRONG_VALUE: u16 = 1292;
    pub const ER_DATA_TOO_LONG: u16 = 1406;
    pub const ER_WARN_DATA_OUT_OF_RANGE: u16 = 1264;
    pub const ER_SP_DOES_NOT_EXIST: u16 = 1305;
    pub const ER_WRONG_FIELD_WITH_GROUP: u16 = 1055;
    pub const ER_INVALID_GROUP_FUNC_USE: u16 = 1111;
    pub const ER_WRONG_VALUE_FOR_VAR: u16 = 1231;
    pub const ER_UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;
    pub const ER_WRONG_DB_NAME: u16 = 1102;
    pub const ER_KEY_COLUMN_DOES_NOT_EXITS: u16 = 1072;
    pub const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
    pub const ER_QUERY_TIMEOUT: u16 = 3024;
    /// A shard could not be reached in time (connect, handshake).
    pub const ER_CONNECT_TO_FOREIGN_DATA_SOURCE: u16 = 1429;
    /// No backend connection became free within the pool's acquire timeout.
    pub const ER_TOO_MANY_USER_CONNECTIONS: u16 = 1203;
    pub const ER_SECURE_TRANSPORT_REQUIRED: u16 = 3159;
    pub const CR_SSL_CONNECTION_ERROR: u16 = 2026;
    /// Vitess: a write the vschema cannot route.
    pub const ER_CANT_ROUTE: u16 = 1173;
    /// Client-side codes (CR_*) used when a backend is lost.
    pub const CR_SERVER_GONE: u16 = 2006;
    pub const CR_SERVER_LOST: u16 = 2013;
    pub const CR_AUTH_PLUGIN_ERR: u16 = 2061;
}

impl SqlError {
    pub fn new(code: u16, state: &str, message: impl Into<String>) -> Self {
        let mut s = [b'H', b'Y', b'0', b'0', b'0'];
        let b = state.as_bytes();
        if b.len() == 5 {
            s.copy_from_slice(b);
        }
        SqlError {
            code,
            state: s,
            message: message.into(),
        }
    }

    /// SQLSTATE as text.
    pub fn sqlstate(&self) -> &str {
        std::str::from_utf8(&self.state).unwrap_or("HY000")
    }

    /// 1064 / 42000.
    pub fn syntax(message: impl Into<String>) -> Self {
        Self::new(codes::ER_PARSE_ERROR, "42000", message)
    }
    /// 1105 / HY000: anything without a better code, including caught panics.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(codes::ER_UNKNOWN_ERROR, "HY000", message)
    }
    /// 1317 / 70100.
    pub fn interrupted() -> Self {
        Self::new(
            codes::ER_QUERY_INTERRUPTED,
            "70100",
            "Query execution was interrupted",
        )
    }
    /// 1047 / 08S01.
    pub fn unknown_command(cmd: u8) -> Self {
        Self::new(
            codes::ER_UNKNOWN_COM_ERROR,
            "08S01",
            format!("Unknown command 0x{cmd:02x}"),
        )
    }
    /// 1153 / 08S01.
    pub fn packet_too_large() -> Self {
        Self::new(
            codes::ER_NET_PACKET_TOO_LARGE,
            "08S01",
            "Got a packet bigger than 'max_allowed_packet' bytes",
        )
    }
    /// 1045 / 28000.
    /// 1045 / 28000: bad credentials. `host` is the client's address as the server saw it.
    pub fn access_denied(user: &str, host: &str, using_password: bool) -> Self {
        Self::new(
            codes::ER_ACCESS_DENIED,
            "28000",
            format!(
                "Access denied for user '{user}'@'{host}' (using password: {})",
                if using_password { "YES" } else { "NO" }
            ),
        )
    }
    /// 1044 / 42000: the user may not use this keyspace (database).
    pub fn db_access_denied(user: &str, database: &str) -> Self {
        Self::new(
            codes::ER_DBACCESS_DENIED,
            "42000",
            format!("Access denied for user '{user}'@'%' to database '{database}'"),
        )
    }
    /// 3159 / HY000: `--require-secure-transport` and a client without TLS.
    pub fn insecure_transport() -> Self {
        Self::new(
            codes::ER_SECURE_TRANSPORT_REQUIRED,
            "HY000",
            "Connections using insecure transport are prohibited while --require_secure_transport=ON.",
        )
    }
    /// 1146 / 42S02.
    pub fn no_such_table(qualified: &str) -> Self {
        Self::new(
            codes::ER_NO_SUCH_TABLE,
            "42S02",
            format!("Table '{qualified}' doesn't exist"),
        )
    }
    /// 1094 / HY000.
    pub fn no_such_thread(id: u64) -> Self {
        Self::new(
            codes::ER_NO_SUCH_THREAD,
            "HY000",
            format!("Unknown thread id: {id}"),
        )
    }
    /// 1173 / 42000: a write the vschema cannot route.
    pub fn cant_route(message: impl Into<String>) -> Self {
        Self::new(codes::ER_CANT_ROUTE, "42000", message)
    }
    /// 1243 / HY000: unknown prepared statement handler.
    pub fn unknown_stmt(id: u32, during: &str) -> Self {
        Self::new(
            codes::ER_UNKNOWN_STMT_HANDLER,
            "HY000",
            format!("Unknown prepared statement handler ({id}) given to {during}"),
        )
    }
    /// 1210 / HY000.
    pub fn wrong_arguments(during: &str) -> Self {
        Self::new(
            codes::ER_WRONG_ARGUMENTS,
            "HY000",
            format!("Incorrect arguments to {during}"),
        )
    }
    /// 1235 / 42000.
    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::new(codes::ER_NOT_SUPPORTED_YET, "42000", what)
    }
    /// 2013 / HY000: a backend connection was lost mid-statement.
    pub fn backend_lost(detail: impl Into<String>) -> Self {
        Self::new(codes::CR_SERVER_LOST, "HY000", detail)
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ERROR {} ({}): {}",
            self.code,
            self.sqlstate(),
            self.message
        )
    }
}

impl std::error::Error for SqlError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_carry_codes_and_states() {
        let e = SqlError::syntax("near 'x'");
        assert_eq!((e.code, e.sqlstate()), (1064, "42000"));
        assert_eq!(SqlError::interrupted().sqlstate(), "70100");
        assert_eq!(SqlError::unknown_command(0x99).sqlstate(), "08S01");
        assert_eq!(SqlError::new(1, "bad", "x").sqlstate(), "HY000");
        assert_eq!(e.to_string(), "ERROR 1064 (42000): near 'x'");
    }
}
