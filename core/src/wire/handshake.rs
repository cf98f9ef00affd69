//! Connection phase: the v10 handshake, the client's HandshakeResponse41, SSLRequest,
//! auth switch, and the auth scrambles (`mysql_native_password`, `caching_sha2_password`).
//! PLACEHOLDER: implemented by the wire-codec work item.
