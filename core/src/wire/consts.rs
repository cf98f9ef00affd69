//! Protocol constants: capability flags, status flags, command bytes, column types.

/// MariaDB's extended capabilities: the upper half of its 64-bit flags, carried in the last
/// 4 reserved bytes of the greeting and of the handshake response when CLIENT_MYSQL
/// ([`cap::LONG_PASSWORD`]) is clear.
pub mod mariadb_cap {
    /// MARIADB_CLIENT_CACHE_METADATA (bit 36, MariaDB 10.6+): a column-count packet carries
    /// one more byte, "metadata follows"; at 0, a prepared statement's result comes without
    /// the column definitions the connection was last sent for that statement.
    pub const CACHE_METADATA: u32 = 1 << 4;
}

/// Capability flags (CLIENT_*).
pub mod cap {
    /// Also CLIENT_MYSQL: a MariaDB peer clears it, and then sends its extended capabilities
    /// ([`super::mariadb_cap`]) in reserved handshake bytes.
    pub const LONG_PASSWORD: u32 = 1;
    pub const FOUND_ROWS: u32 = 1 << 1;
    pub const LONG_FLAG: u32 = 1 << 2;
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    pub const NO_SCHEMA: u32 = 1 << 4;
    pub const COMPRESS: u32 = 1 << 5;
    pub const ODBC: u32 = 1 << 6;
    pub const LOCAL_FILES: u32 = 1 << 7;
    pub const IGNORE_SPACE: u32 = 1 << 8;
    pub const PROTOCOL_41: u32 = 1 << 9;
    pub const INTERACTIVE: u32 = 1 << 10;
    pub const SSL: u32 = 1 << 11;
    pub const IGNORE_SIGPIPE: u32 = 1 << 12;
    pub const TRANSACTIONS: u32 = 1 << 13;
    pub const RESERVED: u32 = 1 << 14;
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    pub const MULTI_STATEMENTS: u32 = 1 << 16;
    pub const MULTI_RESULTS: u32 = 1 << 17;
    pub const PS_MULTI_RESULTS: u32 = 1 << 18;
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    pub const CONNECT_ATTRS: u32 = 1 << 20;
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
    pub const CAN_HANDLE_EXPIRED_PASSWORDS: u32 = 1 << 22;
    pub const SESSION_TRACK: u32 = 1 << 23;
    pub const DEPRECATE_EOF: u32 = 1 << 24;

    /// What the gateway offers clients. SSL is added by the TLS layer when configured.
    /// SESSION_TRACK is offered as MySQL 5.7+ and MariaDB 10.2+ offer it: some clients (Node's
    /// mysql2) read an OK's info as length-encoded only when the server offers it, and servers
    /// send it length-encoded either way. No session state is ever reported (the status flag
    /// SESSION_STATE_CHANGED stays clear), which the capability allows.
    pub const SERVER_DEFAULT: u32 = LONG_PASSWORD
        | FOUND_ROWS
        | LONG_FLAG
        | CONNECT_WITH_DB
        | NO_SCHEMA
        | ODBC
        | IGNORE_SPACE
        | PROTOCOL_41
        | INTERACTIVE
        | IGNORE_SIGPIPE
        | TRANSACTIONS
        | RESERVED
        | SECURE_CONNECTION
        | MULTI_STATEMENTS
        | MULTI_RESULTS
        | PS_MULTI_RESULTS
        | PLUGIN_AUTH
        | CONNECT_ATTRS
        | PLUGIN_AUTH_LENENC_CLIENT_DATA
        | SESSION_TRACK
        | DEPRECATE_EOF;
}

/// Server status flags (SERVER_STATUS_*).
pub mod status {
    pub const IN_TRANS: u16 = 1;
    pub const AUTOCOMMIT: u16 = 1 << 1;
    pub const MORE_RESULTS_EXISTS: u16 = 1 << 3;
    pub const NO_GOOD_INDEX_USED: u16 = 1 << 4;
    pub const NO_INDEX_USED: u16 = 1 << 5;
    pub const CURSOR_EXISTS: u16 = 1 << 6;
    pub const LAST_ROW_SENT: u16 = 1 << 7;
    pub const DB_DROPPED: u16 = 1 << 8;
    pub const NO_BACKSLASH_ESCAPES: u16 = 1 << 9;
    pub const METADATA_CHANGED: u16 = 1 << 10;
    pub const QUERY_WAS_SLOW: u16 = 1 << 11;
    pub const PS_OUT_PARAMS: u16 = 1 << 12;
    pub const IN_TRANS_READONLY: u16 = 1 << 13;
    pub const SESSION_STATE_CHANGED: u16 = 1 << 14;
}

/// Command bytes (COM_*).
pub mod com {
    pub const SLEEP: u8 = 0x00;
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const STATISTICS: u8 = 0x09;
    pub const PROCESS_KILL: u8 = 0x0c;
    pub const PING: u8 = 0x0e;
    pub const CHANGE_USER: u8 = 0x11;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1a;
    pub const SET_OPTION: u8 = 0x1b;
    pub const STMT_FETCH: u8 = 0x1c;
    pub const RESET_CONNECTION: u8 = 0x1f;
}

/// Column types (MYSQL_TYPE_*), as sent in column definitions and binary rows.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(any(test, feature = "fuzzing"), derive(arbitrary::Arbitrary))]
#[repr(u8)]
pub enum ColumnType {
    Decimal = 0x00,
    Tiny = 0x01,
    Short = 0x02,
    Long = 0x03,
    Float = 0x04,
    Double = 0x05,
    Null = 0x06,
    Timestamp = 0x07,
    LongLong = 0x08,
    Int24 = 0x09,
    Date = 0x0a,
    Time = 0x0b,
    DateTime = 0x0c,
    Year = 0x0d,
    NewDate = 0x0e,
    VarChar = 0x0f,
    Bit = 0x10,
    Json = 0xf5,
    NewDecimal = 0xf6,
    Enum = 0xf7,
    Set = 0xf8,
    TinyBlob = 0xf9,
    MediumBlob = 0xfa,
    LongBlob = 0xfb,
    Blob = 0xfc,
    VarString = 0xfd,
    String = 0xfe,
    Geometry = 0xff,
}

impl ColumnType {
    /// Decodes a type byte; unknown bytes are `None` (callers answer with an error).
    pub fn from_u8(b: u8) -> Option<ColumnType> {
        use ColumnType::*;
        Some(match b {
            0x00 => Decimal,
            0x01 => Tiny,
            0x02 => Short,
            0x03 => Long,
            0x04 => Float,
            0x05 => Double,
            0x06 => Null,
            0x07 => Timestamp,
            0x08 => LongLong,
            0x09 => Int24,
            0x0a => Date,
            0x0b => Time,
            0x0c => DateTime,
            0x0d => Year,
            0x0e => NewDate,
            0x0f => VarChar,
            0x10 => Bit,
            0xf5 => Json,
            0xf6 => NewDecimal,
            0xf7 => Enum,
            0xf8 => Set,
            0xf9 => TinyBlob,
            0xfa => MediumBlob,
            0xfb => LongBlob,
            0xfc => Blob,
            0xfd => VarString,
            0xfe => String,
            0xff => Geometry,
            _ => return None,
        })
    }

    /// Integer types, whose values are integers in both protocols.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            ColumnType::Tiny
                | ColumnType::Short
                | ColumnType::Long
                | ColumnType::LongLong
                | ColumnType::Int24
                | ColumnType::Year
        )
    }

    /// Date and time types, sent in the binary protocol as packed temporal structs.
    pub fn is_temporal(self) -> bool {
        matches!(
            self,
            ColumnType::Date
                | ColumnType::NewDate
                | ColumnType::DateTime
                | ColumnType::Timestamp
                | ColumnType::Time
        )
    }
}

/// Column definition flags (*_FLAG).
pub mod flag {
    pub const NOT_NULL: u16 = 1;
    pub const PRI_KEY: u16 = 2;
    pub const UNIQUE_KEY: u16 = 4;
    pub const MULTIPLE_KEY: u16 = 8;
    pub const BLOB: u16 = 16;
    pub const UNSIGNED: u16 = 32;
    pub const ZEROFILL: u16 = 64;
    pub const BINARY: u16 = 128;
    pub const ENUM: u16 = 256;
    pub const AUTO_INCREMENT: u16 = 512;
    pub const TIMESTAMP: u16 = 1024;
    pub const SET: u16 = 2048;
    pub const NO_DEFAULT_VALUE: u16 = 4096;
    pub const ON_UPDATE_NOW: u16 = 8192;
    pub const NUM: u16 = 32768;
}

/// Character set ids used in handshakes and column definitions.
pub mod charset {
    /// utf8mb4_general_ci: what the gateway announces and uses for text columns.
    pub const UTF8MB4_GENERAL_CI: u16 = 45;
    pub const UTF8_GENERAL_CI: u16 = 33;
    /// binary: numbers, blobs and binary strings.
    pub const BINARY: u16 = 63;
}

/// The largest payload one packet carries; longer payloads continue in further packets.
pub const MAX_PACKET_PAYLOAD: usize = 0xff_ff_ff;
