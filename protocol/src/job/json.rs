//! The job JSON parser: walks a `serde_json::Value` so every error can name its position.

use serde_json::Value;

use super::{check_limit, JobLimits, JobSpec, JobSpecError, Operand, Position, MAX_ABS_ENTRY};
use crate::matrix::IntMatrix;

/// Describes a JSON value briefly for error messages.
fn describe(value: &Value) -> String {
    let text = match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(_) | Value::Array(_) | Value::Object(_) => value.to_string(),
    };
    truncate(text, 40)
}

fn truncate(mut text: String, max_chars: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Reads one JSON number as an in-range integer.
fn parse_entry(value: &Value, at: Position) -> Result<i64, JobSpecError> {
    let out_of_range = |value: String| JobSpecError::OutOfRange {
        at,
        value,
        limit: MAX_ABS_ENTRY,
    };
    match value {
        Value::Number(n) => {
            if let Some(v) = n.as_i64() {
                if v.unsigned_abs() > MAX_ABS_ENTRY.unsigned_abs() {
                    return Err(out_of_range(v.to_string()));
                }
                Ok(v)
            } else if n.is_u64() {
                Err(out_of_range(n.to_string()))
            } else {
                // A float: integral but huge values are range errors, anything else is not
                // an integer (`1.5`, and also `1.0`: entries must be written as integers).
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.is_finite() && f.fract() == 0.0 && f.abs() > MAX_ABS_ENTRY as f64 {
                    Err(out_of_range(n.to_string()))
                } else {
                    Err(JobSpecError::NotAnInteger {
                        at,
                        found: describe(value),
                    })
                }
            }
        }
        other => Err(JobSpecError::NotAnInteger {
            at,
            found: describe(other),
        }),
    }
}

/// Reads an array of rows (`matrix` or `rhs`).
fn parse_rows(
    value: &Value,
    operand: Operand,
    max_rows: usize,
    max_cols: usize,
) -> Result<IntMatrix, JobSpecError> {
    let rows = value.as_array().ok_or_else(|| JobSpecError::NotAnArray {
        what: format!("{operand}"),
        found: describe(value),
    })?;
    let (rows_what, cols_what) = match operand {
        Operand::Matrix => ("rows of matrix (m)", "columns of matrix (k)"),
        _ => ("rows of rhs (k)", "columns of rhs (n)"),
    };
    check_limit(rows_what, rows.len(), max_rows)?;
    let first = rows.first().ok_or(JobSpecError::Empty { operand })?;
    let cols = first
        .as_array()
        .ok_or_else(|| JobSpecError::NotAnArray {
            what: format!("{operand} row 0"),
            found: describe(first),
        })?
        .len();
    if cols == 0 {
        return Err(JobSpecError::Empty { operand });
    }
    check_limit(cols_what, cols, max_cols)?;
    let mut data = Vec::with_capacity(rows.len().saturating_mul(cols));
    for (row, row_value) in rows.iter().enumerate() {
        let entries = row_value
            .as_array()
            .ok_or_else(|| JobSpecError::NotAnArray {
                what: format!("{operand} row {row}"),
                found: describe(row_value),
            })?;
        if entries.len() != cols {
            return Err(JobSpecError::RaggedRow {
                operand,
                row,
                len: entries.len(),
                expected: cols,
            });
        }
        for (col, entry) in entries.iter().enumerate() {
            data.push(parse_entry(entry, Position { operand, row, col })?);
        }
    }
    Ok(IntMatrix::new(rows.len(), cols, data)?)
}

/// Reads the `vector` operand as a k×1 matrix.
fn parse_vector(value: &Value, max_k: usize) -> Result<IntMatrix, JobSpecError> {
    let operand = Operand::Vector;
    let entries = value.as_array().ok_or_else(|| JobSpecError::NotAnArray {
        what: "vector".to_string(),
        found: describe(value),
    })?;
    if entries.is_empty() {
        return Err(JobSpecError::Empty { operand });
    }
    check_limit("length of vector (k)", entries.len(), max_k)?;
    let data = entries
        .iter()
        .enumerate()
        .map(|(row, v)| {
            parse_entry(
                v,
                Position {
                    operand,
                    row,
                    col: 0,
                },
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(IntMatrix::column(data))
}

impl JobSpec {
    /// Parses and validates the job JSON (either form, see the module docs).
    pub fn from_json(text: &str, limits: &JobLimits) -> Result<Self, JobSpecError> {
        Self::from_json_slice(text.as_bytes(), limits)
    }

    /// Parses and validates the job JSON from bytes.
    pub fn from_json_slice(bytes: &[u8], limits: &JobLimits) -> Result<Self, JobSpecError> {
        if bytes.len() > limits.max_json_bytes {
            return Err(JobSpecError::InputTooLarge {
                len: bytes.len(),
                limit: limits.max_json_bytes,
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| JobSpecError::Json {
            line: e.line(),
            column: e.column(),
            detail: e.to_string(),
        })?;
        let object = value.as_object().ok_or_else(|| JobSpecError::NotAnObject {
            found: describe(&value),
        })?;
        if let Some(field) = object
            .keys()
            .find(|k| !matches!(k.as_str(), "matrix" | "vector" | "rhs"))
        {
            return Err(JobSpecError::UnknownField {
                field: truncate(field.clone(), 40),
            });
        }
        let w_value = object.get("matrix").ok_or(JobSpecError::MissingField {
            field: "\"matrix\"",
        })?;
        let max_rows = limits.max_rows.min(u32::MAX as usize);
        let w = parse_rows(w_value, Operand::Matrix, max_rows, limits.max_k)?;
        let x = match (object.get("vector"), object.get("rhs")) {
            (Some(_), Some(_)) => return Err(JobSpecError::BothRightHandSides),
            (None, None) => {
                return Err(JobSpecError::MissingField {
                    field: "\"vector\" or \"rhs\"",
                })
            }
            (Some(v), None) => parse_vector(v, limits.max_k)?,
            (None, Some(r)) => parse_rows(r, Operand::Rhs, limits.max_k, limits.max_n)?,
        };
        Self::new(w, x, limits)
    }
}
