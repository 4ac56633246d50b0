//! The job JSON parser: a streaming serde visitor that reads the document once, keeps only
//! the entries it accepts and stops at the first problem, naming its position.
//!
//! Nothing is built for what is refused: an operand whose rows, columns or entries pass the
//! [`JobLimits`] is refused as soon as the limit is passed (its elements are then only
//! counted, without being kept, so the error gives the exact count), and the rest of the
//! document is not read. Peak memory is the accepted entries (8 bytes each) plus one row,
//! never a tree of the whole body. Errors come in document order: the first problem met is
//! the one reported.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{check_limit, JobLimits, JobSpec, JobSpecError, Operand, Position, MAX_ABS_ENTRY};
use crate::matrix::IntMatrix;

/// Characters of a refused value quoted in an error (longer values end with `…`).
const QUOTED_CHARS: usize = 40;

fn truncate(mut text: String, max_chars: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// The job error that stopped the parse. serde's error type carries only text, so a
/// visitor leaves the typed error here and returns serde's error to unwind.
#[derive(Default)]
struct Found(RefCell<Option<JobSpecError>>);

impl Found {
    fn fail<E: de::Error>(&self, err: JobSpecError) -> E {
        let text = err.to_string();
        self.0.borrow_mut().get_or_insert(err);
        E::custom(text)
    }
}

/// A number as serde_json prints it.
fn float_text(v: f64) -> String {
    serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string())
}

/// Renders a JSON value compactly, as serde_json prints it, into `out`. Once `out` holds
/// more than [`QUOTED_CHARS`] characters the rest of the value is read but not kept.
struct Describe<'a> {
    out: &'a mut String,
    /// Written before the value (a separator inside an array or object).
    before: &'static str,
}

impl Describe<'_> {
    fn full(&self) -> bool {
        self.out.chars().nth(QUOTED_CHARS).is_some()
    }

    fn push(&mut self, text: &str) {
        if !self.full() {
            self.out.push_str(text);
        }
    }

    fn start(&mut self) {
        let before = self.before;
        self.push(before);
    }
}

impl<'de> DeserializeSeed<'de> for Describe<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Describe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<(), E> {
        self.start();
        self.push(if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<(), E> {
        self.start();
        self.push(&v.to_string());
        Ok(())
    }

    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<(), E> {
        self.start();
        self.push(&v.to_string());
        Ok(())
    }

    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<(), E> {
        self.start();
        self.push(&float_text(v));
        Ok(())
    }

    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<(), E> {
        self.start();
        // Only the start can be quoted: escape no more than that.
        let cut = v
            .char_indices()
            .nth(QUOTED_CHARS + 1)
            .map_or(v.len(), |(i, _)| i);
        let quoted = serde_json::to_string(&v[..cut]).unwrap_or_default();
        let quoted = match quoted.strip_suffix('"') {
            Some(open) if cut < v.len() => open,
            _ => &quoted,
        };
        self.push(quoted);
        Ok(())
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.start();
        self.push("null");
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.start();
        self.push("[");
        let mut before = "";
        while seq
            .next_element_seed(Describe {
                out: self.out,
                before,
            })?
            .is_some()
        {
            before = ",";
        }
        self.push("]");
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.start();
        self.push("{");
        let mut before = "";
        while map
            .next_key_seed(Describe {
                out: self.out,
                before,
            })?
            .is_some()
        {
            map.next_value_seed(Describe {
                out: self.out,
                before: ":",
            })?;
            before = ",";
        }
        self.push("}");
        Ok(())
    }
}

/// Reads one value for an error message: its JSON text, truncated.
fn describe_seq<'de, A: SeqAccess<'de>>(seq: A) -> Result<String, A::Error> {
    let mut out = String::new();
    Describe {
        out: &mut out,
        before: "",
    }
    .visit_seq(seq)?;
    Ok(truncate(out, QUOTED_CHARS))
}

/// [`describe_seq`] for an object.
fn describe_map<'de, A: MapAccess<'de>>(map: A) -> Result<String, A::Error> {
    let mut out = String::new();
    Describe {
        out: &mut out,
        before: "",
    }
    .visit_map(map)?;
    Ok(truncate(out, QUOTED_CHARS))
}

/// A visitor that takes one kind of JSON value and refuses every other kind with an error
/// naming what it found.
trait Refuse {
    fn found(&self) -> &Found;
    /// The error for a value of the wrong kind, described by `text`.
    fn wrong_kind(&self, text: String) -> JobSpecError;
}

/// The `visit_*` methods of the kinds a [`Refuse`] visitor does not take.
macro_rules! refuse {
    (@one bool) => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Err(self.found().fail(self.wrong_kind(v.to_string())))
        }
    };
    (@one numbers) => {
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Err(self.found().fail(self.wrong_kind(v.to_string())))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Err(self.found().fail(self.wrong_kind(v.to_string())))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Err(self.found().fail(self.wrong_kind(float_text(v))))
        }
    };
    (@one str) => {
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let mut text = String::new();
            Describe { out: &mut text, before: "" }.visit_str::<E>(v)?;
            Err(self.found().fail(self.wrong_kind(truncate(text, QUOTED_CHARS))))
        }
    };
    (@one unit) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(self.found().fail(self.wrong_kind("null".into())))
        }
    };
    (@one seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            let text = describe_seq(seq)?;
            Err(self.found().fail(self.wrong_kind(text)))
        }
    };
    (@one map) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let text = describe_map(map)?;
            Err(self.found().fail(self.wrong_kind(text)))
        }
    };
    ($($kind:ident),*) => { $(refuse!(@one $kind);)* };
}

/// Checks one entry's value: an integer with `|v| ≤ MAX_ABS_ENTRY`.
struct Entry<'a> {
    found: &'a Found,
    at: Position,
}

impl Entry<'_> {
    fn out_of_range<E: de::Error>(&self, value: String) -> E {
        self.found.fail(JobSpecError::OutOfRange {
            at: self.at,
            value,
            limit: MAX_ABS_ENTRY,
        })
    }
}

impl Refuse for Entry<'_> {
    fn found(&self) -> &Found {
        self.found
    }

    fn wrong_kind(&self, text: String) -> JobSpecError {
        JobSpecError::NotAnInteger {
            at: self.at,
            found: text,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Entry<'_> {
    type Value = i64;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<i64, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Entry<'_> {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer at {}", self.at)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        if v.unsigned_abs() > MAX_ABS_ENTRY.unsigned_abs() {
            return Err(self.out_of_range(v.to_string()));
        }
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(self.out_of_range(v.to_string())),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        // Integral but huge values are range errors, anything else is not an integer
        // (`1.5`, and also `1.0`: entries must be written as integers).
        let text = float_text(v);
        if v.is_finite() && v.fract() == 0.0 && v.abs() > MAX_ABS_ENTRY as f64 {
            Err(self.out_of_range(text))
        } else {
            Err(self.found.fail(self.wrong_kind(text)))
        }
    }

    refuse!(bool, str, unit, seq, map);
}

/// Reads the elements left in an array without keeping them, and counts them.
fn count_rest<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<usize, A::Error> {
    let mut n = 0usize;
    while seq.next_element::<IgnoredAny>()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// How many rows, columns and entries an operand may have, with the names errors give them.
#[derive(Clone, Copy)]
struct Shape {
    operand: Operand,
    max_rows: usize,
    max_cols: usize,
    max_entries: usize,
}

impl Shape {
    fn rows_what(&self) -> &'static str {
        match self.operand {
            Operand::Matrix => "rows of matrix (m)",
            _ => "rows of rhs (k)",
        }
    }

    fn cols_what(&self) -> &'static str {
        match self.operand {
            Operand::Matrix => "columns of matrix (k)",
            _ => "columns of rhs (n)",
        }
    }

    fn entries_what(&self) -> &'static str {
        match self.operand {
            Operand::Matrix => "entries of W (m·k)",
            _ => "entries of X (k·n)",
        }
    }
}

/// Reads an array of rows (`matrix` or `rhs`) into a matrix.
struct Rows<'a> {
    found: &'a Found,
    shape: Shape,
}

impl Refuse for Rows<'_> {
    fn found(&self) -> &Found {
        self.found
    }

    fn wrong_kind(&self, text: String) -> JobSpecError {
        JobSpecError::NotAnArray {
            what: self.shape.operand.to_string(),
            found: text,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Rows<'_> {
    type Value = IntMatrix;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<IntMatrix, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Rows<'_> {
    type Value = IntMatrix;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of rows for {}", self.shape.operand)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IntMatrix, A::Error> {
        let (found, shape) = (self.found, self.shape);
        let mut data = Vec::new();
        let mut cols = None;
        let mut rows = 0usize;
        loop {
            if rows == shape.max_rows {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    break;
                }
                let value = rows + 1 + count_rest(&mut seq)?;
                let err = JobSpecError::TooLarge {
                    what: shape.rows_what(),
                    value,
                    limit: shape.max_rows,
                };
                return Err(found.fail(err));
            }
            let row = Row {
                found,
                shape,
                row: rows,
                cols,
                data: &mut data,
            };
            let Some(len) = seq.next_element_seed(row)? else {
                break;
            };
            rows += 1;
            let k = *cols.get_or_insert(len);
            if rows.saturating_mul(k) > shape.max_entries {
                // Refused: count the rows left (without keeping them) for an exact error.
                let m = rows + count_rest(&mut seq)?;
                let err = match check_limit(shape.rows_what(), m, shape.max_rows) {
                    Err(too_many_rows) => too_many_rows,
                    Ok(()) => JobSpecError::TooLarge {
                        what: shape.entries_what(),
                        value: m.saturating_mul(k),
                        limit: shape.max_entries,
                    },
                };
                return Err(found.fail(err));
            }
        }
        let Some(cols) = cols else {
            return Err(found.fail(JobSpecError::Empty {
                operand: shape.operand,
            }));
        };
        IntMatrix::new(rows, cols, data).map_err(|e| found.fail(e.into()))
    }

    refuse!(bool, numbers, str, unit, map);
}

/// Reads one row, appending its entries to `data`; its value is the row's length. The
/// first row (`cols` unknown) sets the width; later rows must match it.
struct Row<'a> {
    found: &'a Found,
    shape: Shape,
    row: usize,
    cols: Option<usize>,
    data: &'a mut Vec<i64>,
}

impl Refuse for Row<'_> {
    fn found(&self) -> &Found {
        self.found
    }

    fn wrong_kind(&self, text: String) -> JobSpecError {
        JobSpecError::NotAnArray {
            what: format!("{} row {}", self.shape.operand, self.row),
            found: text,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Row<'_> {
    type Value = usize;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Row<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {} of {} as an array", self.row, self.shape.operand)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let (found, shape, row) = (self.found, self.shape, self.row);
        let width = self.cols.unwrap_or(shape.max_cols);
        let mut col = 0usize;
        loop {
            if col == width {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    break;
                }
                // One entry too many: refused, with the row's full length.
                let len = col + 1 + count_rest(&mut seq)?;
                let err = match self.cols {
                    Some(expected) => JobSpecError::RaggedRow {
                        operand: shape.operand,
                        row,
                        len,
                        expected,
                    },
                    None => JobSpecError::TooLarge {
                        what: shape.cols_what(),
                        value: len,
                        limit: shape.max_cols,
                    },
                };
                return Err(found.fail(err));
            }
            let at = Position {
                operand: shape.operand,
                row,
                col,
            };
            match seq.next_element_seed(Entry { found, at })? {
                Some(v) => self.data.push(v),
                None => break,
            }
            col += 1;
        }
        match self.cols {
            None if col == 0 => Err(found.fail(JobSpecError::Empty {
                operand: shape.operand,
            })),
            Some(expected) if col != expected => Err(found.fail(JobSpecError::RaggedRow {
                operand: shape.operand,
                row,
                len: col,
                expected,
            })),
            _ => Ok(col),
        }
    }

    refuse!(bool, numbers, str, unit, map);
}

/// Reads the `vector` operand as a k×1 matrix.
struct Vector<'a> {
    found: &'a Found,
    max_k: usize,
}

impl Refuse for Vector<'_> {
    fn found(&self) -> &Found {
        self.found
    }

    fn wrong_kind(&self, text: String) -> JobSpecError {
        JobSpecError::NotAnArray {
            what: "vector".into(),
            found: text,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Vector<'_> {
    type Value = IntMatrix;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<IntMatrix, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Vector<'_> {
    type Value = IntMatrix;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the vector as an array of integers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IntMatrix, A::Error> {
        let found = self.found;
        let mut data = Vec::new();
        loop {
            if data.len() == self.max_k {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    break;
                }
                let err = JobSpecError::TooLarge {
                    what: "length of vector (k)",
                    value: data.len() + 1 + count_rest(&mut seq)?,
                    limit: self.max_k,
                };
                return Err(found.fail(err));
            }
            let at = Position {
                operand: Operand::Vector,
                row: data.len(),
                col: 0,
            };
            match seq.next_element_seed(Entry { found, at })? {
                Some(v) => data.push(v),
                None => break,
            }
        }
        if data.is_empty() {
            return Err(found.fail(JobSpecError::Empty {
                operand: Operand::Vector,
            }));
        }
        Ok(IntMatrix::column(data))
    }

    refuse!(bool, numbers, str, unit, map);
}

/// A top-level field of the job object.
enum Field {
    Matrix,
    Vector,
    Rhs,
}

/// Reads a key of the job object; an unknown one is refused.
struct Key<'a> {
    found: &'a Found,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Field;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        match v {
            "matrix" => Ok(Field::Matrix),
            "vector" => Ok(Field::Vector),
            "rhs" => Ok(Field::Rhs),
            other => {
                let cut = other
                    .char_indices()
                    .nth(QUOTED_CHARS + 1)
                    .map_or(other.len(), |(i, _)| i);
                Err(self.found.fail(JobSpecError::UnknownField {
                    field: truncate(other[..cut].to_string(), QUOTED_CHARS),
                }))
            }
        }
    }
}

/// Reads the whole job object: W, and X from `vector` or `rhs`.
struct Job<'a> {
    found: &'a Found,
    limits: &'a JobLimits,
}

impl Refuse for Job<'_> {
    fn found(&self) -> &Found {
        self.found
    }

    fn wrong_kind(&self, text: String) -> JobSpecError {
        JobSpecError::NotAnObject { found: text }
    }
}

impl<'de> Visitor<'de> for Job<'_> {
    type Value = (IntMatrix, IntMatrix);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a job object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (found, limits) = (self.found, self.limits);
        let (mut w, mut x) = (None, None);
        while let Some(field) = map.next_key_seed(Key { found })? {
            match field {
                Field::Matrix if w.is_some() => {
                    return Err(found.fail(JobSpecError::DuplicateField { field: "matrix" }))
                }
                Field::Matrix => {
                    let shape = Shape {
                        operand: Operand::Matrix,
                        max_rows: limits.max_rows.min(u32::MAX as usize),
                        max_cols: limits.max_k,
                        max_entries: limits.max_entries,
                    };
                    w = Some(map.next_value_seed(Rows { found, shape })?);
                }
                Field::Vector | Field::Rhs if x.is_some() => {
                    return Err(found.fail(JobSpecError::BothRightHandSides));
                }
                Field::Vector => {
                    let max_k = limits.max_k;
                    x = Some(map.next_value_seed(Vector { found, max_k })?);
                }
                Field::Rhs => {
                    let shape = Shape {
                        operand: Operand::Rhs,
                        max_rows: limits.max_k,
                        max_cols: limits.max_n,
                        max_entries: limits.max_entries,
                    };
                    x = Some(map.next_value_seed(Rows { found, shape })?);
                }
            }
        }
        let w = w.ok_or_else(|| {
            found.fail(JobSpecError::MissingField {
                field: "\"matrix\"",
            })
        })?;
        let x = x.ok_or_else(|| {
            found.fail(JobSpecError::MissingField {
                field: "\"vector\" or \"rhs\"",
            })
        })?;
        Ok((w, x))
    }

    refuse!(bool, numbers, str, unit, seq);
}

impl JobSpec {
    /// Parses and validates the job JSON (either form, see the module docs).
    pub fn from_json(text: &str, limits: &JobLimits) -> Result<Self, JobSpecError> {
        Self::from_json_slice(text.as_bytes(), limits)
    }

    /// Parses and validates the job JSON from bytes, in one pass that keeps only accepted
    /// entries (see the [module docs](self)).
    pub fn from_json_slice(bytes: &[u8], limits: &JobLimits) -> Result<Self, JobSpecError> {
        if bytes.len() > limits.max_json_bytes {
            return Err(JobSpecError::InputTooLarge {
                len: bytes.len(),
                limit: limits.max_json_bytes,
            });
        }
        let found = Found::default();
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = de::Deserializer::deserialize_any(
            &mut de,
            Job {
                found: &found,
                limits,
            },
        )
        .and_then(|wx| de.end().map(|()| wx));
        match parsed {
            Ok((w, x)) => Self::new(w, x, limits),
            Err(e) => Err(found.0.into_inner().unwrap_or_else(|| JobSpecError::Json {
                line: e.line(),
                column: e.column(),
                detail: e.to_string(),
            })),
        }
    }
}
