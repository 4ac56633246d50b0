//! Weights W for `starkscale model register W.npy|W.safetensors[:TENSOR]`: a 2-D integer matrix
//! read from a NumPy `.npy` file or from one tensor of a Hugging Face `.safetensors` file.
//!
//! STARKScale proves exact integer products, so only integer tensors are read: `I8`, `I16`,
//! `I32`, `U8`, `U16`, `I64`, `U32` and `U64`, decoded little-endian. Every entry must satisfy
//! `|v| ≤ 2^31 − 1` ([`MAX_ABS_ENTRY`], the protocol's bound on an entry), which only the wide
//! types (and `I32`'s −2^31) can break; the first entry that does is named. Float tensors
//! (`F16`, `BF16`, `F32`, `F64`, the 8-, 6- and 4-bit floats) are refused with a hint to
//! quantise them first; nothing is rounded here.
//!
//! W is `m × k` for `y = W·x`. A PyTorch `nn.Linear` weight is stored `out_features ×
//! in_features`, which already is W; [`WeightSource::transpose`] is for tensors stored
//! `in × out` (Keras and Flax `Dense` kernels, GPT-2's `Conv1D`).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use safetensors::{Dtype, SafeTensors};
use starkscale_protocol::job::MAX_ABS_ENTRY;
use starkscale_protocol::matrix::IntMatrix;

use crate::npy;

/// The file extension of a Hugging Face safetensors file, with its dot.
const SAFETENSORS_EXT: &str = ".safetensors";

/// How many tensor names an error lists before it stops with "…".
const NAMES_SHOWN: usize = 20;

/// Where W comes from: a file, the tensor in it, and whether to transpose it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightSource {
    /// The `.npy` or `.safetensors` file.
    pub path: PathBuf,
    /// The tensor to read from a `.safetensors` file; `None` takes the file's only tensor.
    /// Always `None` for a `.npy` file, which holds one array.
    pub tensor: Option<String>,
    /// Transpose the matrix after reading it: for tensors stored `in × out`. A PyTorch
    /// `nn.Linear` weight (`out × in`) is already W and needs no transpose.
    pub transpose: bool,
}

impl WeightSource {
    /// Parses a command-line argument `FILE` or `FILE.safetensors:TENSOR`.
    ///
    /// The argument is split only after a `.safetensors` file name (the last `.safetensors:` in
    /// it, ASCII case ignored), so any other path may contain `:`; the tensor name is everything
    /// after that colon (Hugging Face names such as `model.layers.0.mlp.up_proj.weight`).
    pub fn parse(arg: &str, transpose: bool) -> anyhow::Result<Self> {
        if arg.is_empty() {
            anyhow::bail!("no weight file given: expected W.npy or W.safetensors[:TENSOR]");
        }
        let marker = format!("{SAFETENSORS_EXT}:");
        // ASCII lowercasing keeps every byte offset, so `at` is an offset into `arg` too.
        let (path, tensor) = match arg.to_ascii_lowercase().rfind(&marker) {
            Some(at) => {
                let (file, rest) = arg.split_at(at + SAFETENSORS_EXT.len());
                let name = rest.strip_prefix(':').unwrap_or(rest);
                if name.is_empty() {
                    anyhow::bail!(
                        "{arg}: no tensor name after ':' (write {file}:TENSOR or {file})"
                    );
                }
                (file, Some(name.to_string()))
            }
            None => (arg, None),
        };
        Ok(Self {
            path: PathBuf::from(path),
            tensor,
            transpose,
        })
    }
}

impl FromStr for WeightSource {
    type Err = anyhow::Error;

    /// [`WeightSource::parse`] without transposing.
    fn from_str(arg: &str) -> anyhow::Result<Self> {
        Self::parse(arg, false)
    }
}

/// The two file kinds W can be read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Npy,
    SafeTensors,
}

impl FileKind {
    /// The kind named by `path`'s extension (ASCII case ignored).
    fn of(path: &Path) -> anyhow::Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("npy") => Ok(Self::Npy),
            Some(e) if e.eq_ignore_ascii_case("safetensors") => Ok(Self::SafeTensors),
            _ => anyhow::bail!(
                "{}: unknown kind of weight file; W must be a NumPy .npy file or a Hugging Face \
                 .safetensors file (FILE.safetensors:TENSOR to pick a tensor)",
                path.display()
            ),
        }
    }
}

/// Reads W from `src`: a 2-D integer matrix, transposed if `src.transpose`.
///
/// Fails, with a message saying what to do, on an unknown extension, an unreadable or corrupt
/// file, a missing or ambiguous tensor name, a tensor that is not 2-D, a float tensor (quantise
/// it first) or an entry outside `|v| ≤ 2^31 − 1`.
pub fn read_weights(src: &WeightSource) -> anyhow::Result<IntMatrix> {
    let kind = FileKind::of(&src.path)?;
    let name = src.path.display().to_string();
    if let (FileKind::Npy, Some(tensor)) = (kind, &src.tensor) {
        anyhow::bail!(
            "{name} is a .npy file, which holds one array: a tensor name ('{tensor}') applies \
             only to .safetensors files"
        );
    }
    let bytes = std::fs::read(&src.path).with_context(|| format!("cannot read {name}"))?;
    let w = match kind {
        FileKind::Npy => npy_weights(&bytes, &name)?,
        FileKind::SafeTensors => safetensors_weights(&bytes, &name, src.tensor.as_deref())?,
    };
    if src.transpose {
        transpose(&w).with_context(|| format!("{name}: transposing W"))
    } else {
        Ok(w)
    }
}

/// W from the bytes of a `.npy` file: [`npy::read_matrix`], refusing anything but 2-D.
fn npy_weights(bytes: &[u8], name: &str) -> anyhow::Result<IntMatrix> {
    // `read_matrix` turns a 1-D array into a column; W must be a real 2-D array. A header
    // that does not parse is left to `read_matrix`, which reports it.
    if let Ok(file) = npyz::NpyFile::new(bytes) {
        let shape = file.shape();
        if shape.len() != 2 {
            anyhow::bail!(
                "{name} has shape {shape:?} ({}-D): W must be 2-D (m × k)",
                shape.len()
            );
        }
    }
    npy::read_matrix(bytes, name)
}

/// W from the bytes of a `.safetensors` file: the tensor named `tensor`, or the only one.
fn safetensors_weights(
    bytes: &[u8],
    name: &str,
    tensor: Option<&str>,
) -> anyhow::Result<IntMatrix> {
    let file = SafeTensors::deserialize(bytes)
        .with_context(|| format!("{name} is not a valid .safetensors file"))?;
    let mut names = file.names();
    names.sort_unstable();
    let tensor = match (tensor, names.as_slice()) {
        (Some(t), _) => t,
        (None, [only]) => *only,
        (None, []) => anyhow::bail!("{name} holds no tensors"),
        (None, _) => anyhow::bail!(
            "{name} holds {} tensors: name one as {name}:TENSOR; tensors: {}",
            names.len(),
            list_names(&names)
        ),
    };
    let view = file.tensor(tensor).map_err(|_| {
        anyhow::anyhow!(
            "{name} has no tensor '{tensor}'; tensors: {}",
            list_names(&names)
        )
    })?;
    let dtype = view.dtype();
    let (width, decode) = integer_decoder(dtype).ok_or_else(|| refuse_dtype(dtype, tensor))?;
    let shape = view.shape();
    let &[rows, cols] = shape else {
        anyhow::bail!(
            "tensor '{tensor}' in {name} has shape {shape:?} ({}-D): W must be 2-D (m × k)",
            shape.len()
        );
    };
    let entries = rows
        .checked_mul(cols)
        .ok_or_else(|| anyhow::anyhow!("tensor '{tensor}' in {name}: shape {shape:?} overflows"))?;
    let data = view.data();
    if entries.checked_mul(width) != Some(data.len()) {
        anyhow::bail!(
            "tensor '{tensor}' in {name}: shape {shape:?} of {dtype} needs {rows} × {cols} × \
             {width} bytes, the file holds {}",
            data.len()
        );
    }
    let limit = MAX_ABS_ENTRY.unsigned_abs();
    let mut values = Vec::with_capacity(entries);
    for (i, chunk) in data.chunks_exact(width).enumerate() {
        let v = decode(chunk);
        match i64::try_from(v).ok().filter(|v| v.unsigned_abs() <= limit) {
            Some(v) => values.push(v),
            None => anyhow::bail!(
                "tensor '{tensor}' in {name} ({dtype}): entry {i} (row {}, column {}) is {v}, \
                 outside |v| ≤ {MAX_ABS_ENTRY} (2^31 − 1), the largest entry STARKScale takes",
                i / cols.max(1),
                i % cols.max(1)
            ),
        }
    }
    IntMatrix::new(rows, cols, values)
        .map_err(|e| anyhow::anyhow!("tensor '{tensor}' in {name}: {e}"))
}

/// Decodes one little-endian entry of a given width.
type Decode = fn(&[u8]) -> i128;

/// The first `N` bytes of `b` as an array (`b` is a chunk of exactly `N` bytes).
fn le<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(b);
    a
}

/// Bytes per entry and a little-endian decoder for an integer dtype; `None` for any other.
fn integer_decoder(dtype: Dtype) -> Option<(usize, Decode)> {
    let decoder: (usize, Decode) = match dtype {
        Dtype::I8 => (1, |b| i8::from_le_bytes(le(b)).into()),
        Dtype::U8 => (1, |b| u8::from_le_bytes(le(b)).into()),
        Dtype::I16 => (2, |b| i16::from_le_bytes(le(b)).into()),
        Dtype::U16 => (2, |b| u16::from_le_bytes(le(b)).into()),
        Dtype::I32 => (4, |b| i32::from_le_bytes(le(b)).into()),
        Dtype::U32 => (4, |b| u32::from_le_bytes(le(b)).into()),
        Dtype::I64 => (8, |b| i64::from_le_bytes(le(b)).into()),
        Dtype::U64 => (8, |b| u64::from_le_bytes(le(b)).into()),
        _ => return None,
    };
    Some(decoder)
}

/// The error for a tensor whose dtype is not an integer: floats get a quantisation hint.
fn refuse_dtype(dtype: Dtype, tensor: &str) -> anyhow::Error {
    let float = matches!(
        dtype,
        Dtype::F4
            | Dtype::F6_E2M3
            | Dtype::F6_E3M2
            | Dtype::F8_E5M2
            | Dtype::F8_E4M3
            | Dtype::F8_E8M0
            | Dtype::F8_E4M3FNUZ
            | Dtype::F8_E5M2FNUZ
            | Dtype::F16
            | Dtype::BF16
            | Dtype::F32
            | Dtype::F64
    );
    if float {
        anyhow::anyhow!(
            "tensor '{tensor}' is {dtype}: STARKScale multiplies integers; quantise it to int8 \
             first (e.g. in PyTorch `q = (w / w.abs().max() * 127).round().to(torch.int8)`, then \
             `safetensors.torch.save_file({{\"{tensor}\": q}}, \"W.safetensors\")`, keeping the \
             scale to rescale y)"
        )
    } else {
        anyhow::anyhow!(
            "tensor '{tensor}' is {dtype}: STARKScale reads integer tensors (I8, I16, I32, U8, \
             U16; I64, U32, U64 with every |v| ≤ 2^31 − 1)"
        )
    }
}

/// Sorted names for an error message: the first [`NAMES_SHOWN`], then "…" if there are more.
fn list_names(names: &[&str]) -> String {
    let mut shown: Vec<String> = names
        .iter()
        .take(NAMES_SHOWN)
        .map(|n| format!("'{n}'"))
        .collect();
    if names.len() > NAMES_SHOWN {
        shown.push("…".to_string());
    }
    shown.join(", ")
}

/// The transpose of `m`.
fn transpose(m: &IntMatrix) -> anyhow::Result<IntMatrix> {
    let (rows, cols) = (m.rows(), m.cols());
    let data = m.data();
    // Entry (i / rows, i % rows) of the transpose is entry (i % rows, i / rows) of `m`.
    let t = (0..data.len())
        .map(|i| data[(i % rows) * cols + i / rows])
        .collect();
    Ok(IntMatrix::new(cols, rows, t)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    /// Little-endian bytes of a slice of integers (or floats).
    macro_rules! le_bytes {
        ($values:expr) => {
            $values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
        };
    }

    /// Writes `tensors` (name, dtype, shape, bytes) to `file` in `dir` with the crate's own
    /// serialiser and returns its path.
    fn write_safetensors(
        dir: &Path,
        file: &str,
        tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)],
    ) -> PathBuf {
        let views: Vec<(&str, TensorView<'_>)> = tensors
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                (
                    *name,
                    TensorView::new(*dtype, shape.clone(), bytes).unwrap(),
                )
            })
            .collect();
        let path = dir.join(file);
        safetensors::serialize_to_file(views, None, &path).unwrap();
        path
    }

    /// A file with an I8, an I16, an I32 and an F32 tensor.
    fn mixed(dir: &Path) -> PathBuf {
        write_safetensors(
            dir,
            "model.safetensors",
            &[
                (
                    "w8",
                    Dtype::I8,
                    vec![2, 3],
                    le_bytes!([1i8, -2, 3, -128, 127, 0]),
                ),
                (
                    "w16",
                    Dtype::I16,
                    vec![3, 2],
                    le_bytes!([300i16, -300, 1, 2, -32768, 32767]),
                ),
                (
                    "w32",
                    Dtype::I32,
                    vec![2, 2],
                    le_bytes!([70_000i32, -70_000, 2_147_483_647, -2_147_483_647]),
                ),
                (
                    "wf",
                    Dtype::F32,
                    vec![2, 2],
                    le_bytes!([0.5f32, 1.0, -1.0, 2.0]),
                ),
            ],
        )
    }

    fn source(path: &Path, tensor: Option<&str>, transpose: bool) -> WeightSource {
        WeightSource {
            path: path.to_path_buf(),
            tensor: tensor.map(str::to_string),
            transpose,
        }
    }

    fn err(src: &WeightSource) -> String {
        format!("{:#}", read_weights(src).unwrap_err())
    }

    #[test]
    fn integer_tensors_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = mixed(dir.path());
        let w8 = read_weights(&source(&path, Some("w8"), false)).unwrap();
        assert_eq!((w8.rows(), w8.cols()), (2, 3));
        assert_eq!(w8.data(), &[1, -2, 3, -128, 127, 0]);
        let w16 = read_weights(&source(&path, Some("w16"), false)).unwrap();
        assert_eq!((w16.rows(), w16.cols()), (3, 2));
        assert_eq!(w16.data(), &[300, -300, 1, 2, -32768, 32767]);
        let w32 = read_weights(&source(&path, Some("w32"), false)).unwrap();
        assert_eq!((w32.rows(), w32.cols()), (2, 2));
        assert_eq!(
            w32.data(),
            &[70_000, -70_000, 2_147_483_647, -2_147_483_647]
        );
    }

    #[test]
    fn unsigned_and_wide_tensors_in_range_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_safetensors(
            dir.path(),
            "wide.safetensors",
            &[
                ("u8", Dtype::U8, vec![1, 2], vec![0, 255]),
                ("u16", Dtype::U16, vec![1, 2], le_bytes!([0u16, 65535])),
                (
                    "u32",
                    Dtype::U32,
                    vec![1, 2],
                    le_bytes!([7u32, 2_147_483_647]),
                ),
                (
                    "i64",
                    Dtype::I64,
                    vec![2, 1],
                    le_bytes!([-2_147_483_647i64, 5]),
                ),
                ("u64", Dtype::U64, vec![1, 1], le_bytes!([9u64])),
            ],
        );
        let read = |t| {
            read_weights(&source(&path, Some(t), false))
                .unwrap()
                .into_data()
        };
        assert_eq!(read("u8"), [0, 255]);
        assert_eq!(read("u16"), [0, 65535]);
        assert_eq!(read("u32"), [7, 2_147_483_647]);
        assert_eq!(read("i64"), [-2_147_483_647, 5]);
        assert_eq!(read("u64"), [9]);
    }

    #[test]
    fn transpose_turns_in_by_out_into_w() {
        let dir = tempfile::tempdir().unwrap();
        let path = mixed(dir.path());
        let t = read_weights(&source(&path, Some("w8"), true)).unwrap();
        assert_eq!((t.rows(), t.cols()), (3, 2));
        assert_eq!(t.data(), &[1, -128, -2, 127, 3, 0]);
        let w = read_weights(&source(&path, Some("w8"), false)).unwrap();
        for r in 0..2 {
            for c in 0..3 {
                assert_eq!(w.get(r, c), t.get(c, r));
            }
        }
    }

    #[test]
    fn float_tensors_are_refused_with_a_quantise_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = mixed(dir.path());
        let e = err(&source(&path, Some("wf"), false));
        assert!(
            e.contains("'wf' is F32") && e.contains("integers") && e.contains("quantise"),
            "{e}"
        );
        let bf16 = write_safetensors(
            dir.path(),
            "bf16.safetensors",
            &[("w", Dtype::BF16, vec![1, 2], vec![0x80, 0x3f, 0x00, 0x40])],
        );
        let e = err(&source(&bf16, None, false));
        assert!(e.contains("is BF16") && e.contains("quantise"), "{e}");
    }

    #[test]
    fn a_missing_name_lists_the_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let path = mixed(dir.path());
        let e = err(&source(&path, Some("nope"), false));
        assert!(
            e.contains("no tensor 'nope'") && e.contains("'w16', 'w32', 'w8', 'wf'"),
            "{e}"
        );
    }

    #[test]
    fn an_ambiguous_file_needs_a_name_and_a_single_tensor_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = mixed(dir.path());
        let e = err(&source(&path, None, false));
        assert!(
            e.contains("holds 4 tensors") && e.contains("'w16', 'w32', 'w8', 'wf'"),
            "{e}"
        );

        let single = write_safetensors(
            dir.path(),
            "single.safetensors",
            &[("only.weight", Dtype::I8, vec![1, 2], le_bytes!([4i8, -5]))],
        );
        assert_eq!(
            read_weights(&source(&single, None, false)).unwrap().data(),
            &[4, -5]
        );

        // Many tensors: the first 20 sorted names, then "…".
        let many: Vec<(String, Vec<u8>)> =
            (0..25).map(|i| (format!("t{i:02}"), vec![1u8])).collect();
        let tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = many
            .iter()
            .map(|(n, b)| (n.as_str(), Dtype::I8, vec![1, 1], b.clone()))
            .collect();
        let path = write_safetensors(dir.path(), "many.safetensors", &tensors);
        let e = err(&source(&path, None, false));
        assert!(e.contains("'t00', 't01'") && e.contains("'t19', …"), "{e}");
        assert!(!e.contains("t20"), "{e}");
    }

    #[test]
    fn tensors_that_are_not_2d_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_safetensors(
            dir.path(),
            "shapes.safetensors",
            &[
                ("bias", Dtype::I8, vec![3], le_bytes!([1i8, 2, 3])),
                (
                    "conv",
                    Dtype::I16,
                    vec![2, 1, 2],
                    le_bytes!([1i16, 2, 3, 4]),
                ),
            ],
        );
        let e = err(&source(&path, Some("bias"), false));
        assert!(
            e.contains("[3]") && e.contains("1-D") && e.contains("must be 2-D"),
            "{e}"
        );
        let e = err(&source(&path, Some("conv"), false));
        assert!(
            e.contains("[2, 1, 2]") && e.contains("3-D") && e.contains("must be 2-D"),
            "{e}"
        );
    }

    #[test]
    fn wide_entries_out_of_range_are_refused_by_index_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_safetensors(
            dir.path(),
            "big.safetensors",
            &[
                (
                    "i64",
                    Dtype::I64,
                    vec![2, 2],
                    le_bytes!([1i64, 2, 3, -(1i64 << 31)]),
                ),
                ("u32", Dtype::U32, vec![1, 3], le_bytes!([0u32, 1 << 31, 1])),
                ("u64", Dtype::U64, vec![1, 1], le_bytes!([u64::MAX])),
            ],
        );
        let e = err(&source(&path, Some("i64"), false));
        assert!(
            e.contains("entry 3 (row 1, column 1) is -2147483648"),
            "{e}"
        );
        let e = err(&source(&path, Some("u32"), false));
        assert!(e.contains("entry 1 (row 0, column 1) is 2147483648"), "{e}");
        let e = err(&source(&path, Some("u64"), false));
        assert!(e.contains(&format!("is {}", u64::MAX)), "{e}");
    }

    #[test]
    fn file_colon_tensor_is_split_only_after_safetensors() {
        let s = WeightSource::parse(
            "dir/model.safetensors:model.layers.0.mlp.up_proj.weight",
            true,
        )
        .unwrap();
        assert_eq!(s.path, PathBuf::from("dir/model.safetensors"));
        assert_eq!(
            s.tensor.as_deref(),
            Some("model.layers.0.mlp.up_proj.weight")
        );
        assert!(s.transpose);

        let s: WeightSource = "model.safetensors".parse().unwrap();
        assert_eq!(
            (s.path, s.tensor, s.transpose),
            ("model.safetensors".into(), None, false)
        );

        // Colons elsewhere stay in the path.
        let s: WeightSource = "runs/12:30/W.npy".parse().unwrap();
        assert_eq!((s.path, s.tensor), ("runs/12:30/W.npy".into(), None));
        let s: WeightSource = "a:b.safetensors:x/y.safetensors:w".parse().unwrap();
        assert_eq!(s.path, PathBuf::from("a:b.safetensors:x/y.safetensors"));
        assert_eq!(s.tensor.as_deref(), Some("w"));
        let s: WeightSource = "M.SafeTensors:w".parse().unwrap();
        assert_eq!(
            (s.path, s.tensor),
            ("M.SafeTensors".into(), Some("w".into()))
        );

        assert!("model.safetensors:".parse::<WeightSource>().is_err());
        assert!("".parse::<WeightSource>().is_err());
    }

    #[test]
    fn unknown_extensions_and_npy_tensor_names_are_refused() {
        let e = err(&source(Path::new("W.pt"), None, false));
        assert!(e.contains(".npy") && e.contains(".safetensors"), "{e}");
        let e = err(&source(Path::new("W.npy"), Some("w"), false));
        assert!(e.contains("only to .safetensors"), "{e}");
    }

    fn npy_bytes<T: npyz::Serialize + npyz::AutoSerialize + Copy>(
        shape: &[u64],
        data: &[T],
    ) -> Vec<u8> {
        use npyz::WriterBuilder;
        let mut out = Vec::new();
        let mut writer = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        writer.extend(data.iter().copied()).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn npy_weights_read_back_exactly_and_must_be_2d() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("W.npy");
        std::fs::write(&path, npy_bytes::<i16>(&[2, 3], &[1, -2, 300, -400, 5, 6])).unwrap();
        let w = read_weights(&source(&path, None, false)).unwrap();
        assert_eq!((w.rows(), w.cols()), (2, 3));
        assert_eq!(w.data(), &[1, -2, 300, -400, 5, 6]);
        let t = read_weights(&source(&path, None, true)).unwrap();
        assert_eq!((t.rows(), t.cols()), (3, 2));
        assert_eq!(t.data(), &[1, -400, -2, 5, 300, 6]);

        let vector = dir.path().join("v.npy");
        std::fs::write(&vector, npy_bytes::<i8>(&[3], &[1, 2, 3])).unwrap();
        let e = err(&source(&vector, None, false));
        assert!(e.contains("1-D") && e.contains("W must be 2-D"), "{e}");
        let cube = dir.path().join("c.npy");
        std::fs::write(&cube, npy_bytes::<i8>(&[1, 1, 2], &[1, 2])).unwrap();
        let e = err(&source(&cube, None, false));
        assert!(e.contains("3-D") && e.contains("W must be 2-D"), "{e}");
    }
}
