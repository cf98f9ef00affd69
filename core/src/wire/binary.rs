//! Binary protocol (prepared statements): binary result rows, COM_STMT_EXECUTE parameters,
//! COM_STMT_PREPARE_OK, and the packed temporal forms.
//!
//! Values keep the text protocol's canonical form (see `wire::value`); this module converts
//! using the column type. PLACEHOLDER: implemented by the wire-codec work item.

use super::codec::{DecodeError, DecodeResult, Reader};
use super::column::ColumnDef;
use super::consts::ColumnType;
use super::value::Value;
use bytes::{BufMut, BytesMut};

/// A parameter type as bound by the client in COM_STMT_EXECUTE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamType {
    pub col_type: ColumnType,
    pub unsigned: bool,
}

/// Appends a binary-protocol row payload (0x00 header, NULL bitmap with offset 2, values).
pub fn put_binary_row(
    out: &mut BytesMut,
    columns: &[ColumnDef],
    values: &[Value],
) -> Result<(), DecodeError> {
    let _ = (out, columns, values);
    Err(DecodeError("binary rows not implemented yet"))
}

/// Converts one text-protocol row payload into a binary-protocol row payload, appended to
/// `out`, without intermediate allocation (the gateway's path from text shards to binary
/// clients).
pub fn text_row_to_binary(
    out: &mut BytesMut,
    columns: &[ColumnDef],
    text_row: &[u8],
) -> Result<(), DecodeError> {
    let _ = (out, columns, text_row);
    Err(DecodeError("binary rows not implemented yet"))
}

/// Decodes a binary-protocol row into values (text canonical form for temporal/decimal).
pub fn decode_binary_row(columns: &[ColumnDef], payload: &[u8]) -> DecodeResult<Vec<Value>> {
    let _ = (columns, payload);
    Err(DecodeError("binary rows not implemented yet"))
}

/// Decodes the parameter block of COM_STMT_EXECUTE (after stmt id, flags, iteration count).
/// `types` holds the types bound by an earlier execute and is updated when the client sends
/// new ones; `long_data[i]` is data sent with COM_STMT_SEND_LONG_DATA for parameter i.
pub fn decode_execute_params(
    r: &mut Reader<'_>,
    param_count: usize,
    types: &mut Vec<ParamType>,
    long_data: &[Option<BytesMut>],
) -> DecodeResult<Vec<Value>> {
    let _ = (r, param_count, types, long_data);
    Err(DecodeError("execute params not implemented yet"))
}

/// Encodes parameters for COM_STMT_EXECUTE (client side toward shards; also tests).
pub fn put_execute_params(out: &mut impl BufMut, params: &[Value]) {
    let _ = (out, params);
}

/// The COM_STMT_PREPARE_OK header packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareOk {
    pub stmt_id: u32,
    pub num_columns: u16,
    pub num_params: u16,
    pub warnings: u16,
}

impl PrepareOk {
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(0);
        out.put_u32_le(self.stmt_id);
        out.put_u16_le(self.num_columns);
        out.put_u16_le(self.num_params);
        out.put_u8(0);
        out.put_u16_le(self.warnings);
    }
    pub fn decode(payload: &[u8]) -> DecodeResult<PrepareOk> {
        let mut r = Reader::new(payload);
        if r.u8()? != 0 {
            return Err(DecodeError("not a prepare OK"));
        }
        let stmt_id = r.u32()?;
        let num_columns = r.u16()?;
        let num_params = r.u16()?;
        let _ = r.u8();
        let warnings = r.u16().unwrap_or(0);
        Ok(PrepareOk {
            stmt_id,
            num_columns,
            num_params,
            warnings,
        })
    }
}
