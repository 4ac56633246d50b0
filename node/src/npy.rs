//! NumPy `.npy` input: integer arrays for W (2-D) and X (1-D vector or 2-D k × n), the format
//! ML tooling exports quantised weights and activations in.

use std::path::Path;

use anyhow::Context;
use npyz::{NpyFile, Order};
use starkscale_protocol::matrix::IntMatrix;
use starkscale_protocol::{JobLimits, JobSpec};

/// Reads an integer `.npy` array as a matrix; a 1-D array becomes a column vector.
pub fn read_matrix(bytes: &[u8], name: &str) -> anyhow::Result<IntMatrix> {
    let npy = NpyFile::new(bytes).with_context(|| format!("{name} is not a .npy file"))?;
    let shape: Vec<usize> = npy.shape().iter().map(|d| *d as usize).collect();
    let (rows, cols) = match shape.as_slice() {
        [n] => (*n, 1),
        [r, c] => (*r, *c),
        other => anyhow::bail!(
            "{name} has {} dimensions ({other:?}); W must be 2-D and X 1-D or 2-D",
            other.len()
        ),
    };
    let order = npy.order();
    let dtype = npy.dtype();
    let data = read_integers(bytes).ok_or_else(|| {
        anyhow::anyhow!(
            "{name} holds {} values; STARKScale multiplies integers (int8 to int64, uint8 to uint32): quantise first",
            dtype.descr()
        )
    })??;
    if data.len() != rows * cols {
        anyhow::bail!("{name}: shape {shape:?} but {} values", data.len());
    }
    let data = match order {
        Order::C => data,
        // Column-major file: transpose into row-major.
        Order::Fortran => (0..rows * cols)
            .map(|i| data[(i % cols) * rows + i / cols])
            .collect(),
    };
    IntMatrix::new(rows, cols, data).map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

/// Tries each supported integer type; `None` if the array holds another type.
fn read_integers(bytes: &[u8]) -> Option<anyhow::Result<Vec<i64>>> {
    fn as_i64<T: npyz::Deserialize + TryInto<i64>>(
        bytes: &[u8],
    ) -> Option<anyhow::Result<Vec<i64>>> {
        let npy = NpyFile::new(bytes).ok()?;
        let reader = npy.data::<T>().ok()?;
        Some(
            reader
                .map(|v| {
                    let v = v.context("truncated or corrupt .npy data")?;
                    v.try_into()
                        .map_err(|_| anyhow::anyhow!("a value does not fit in i64"))
                })
                .collect(),
        )
    }
    as_i64::<i64>(bytes)
        .or_else(|| as_i64::<i32>(bytes))
        .or_else(|| as_i64::<i16>(bytes))
        .or_else(|| as_i64::<i8>(bytes))
        .or_else(|| as_i64::<u8>(bytes))
        .or_else(|| as_i64::<u16>(bytes))
        .or_else(|| as_i64::<u32>(bytes))
}

/// Builds a job from `W.npy` and `X.npy`, validated like a JSON job.
pub fn load_job(w_path: &Path, x_path: &Path) -> anyhow::Result<JobSpec> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let w = read_matrix(&read(w_path)?, &w_path.display().to_string())?;
    let x = read_matrix(&read(x_path)?, &x_path.display().to_string())?;
    if w.cols() == 1 && w.rows() > 1 && x.rows() != w.rows() {
        // A 1-D W is almost certainly a mistake; say so rather than multiplying a column.
        anyhow::bail!(
            "{} is 1-D: W must be a 2-D matrix (m × k)",
            w_path.display()
        );
    }
    Ok(JobSpec::new(w, x, &JobLimits::default())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy<T: npyz::Serialize + npyz::AutoSerialize + Copy>(shape: &[u64], data: &[T]) -> Vec<u8> {
        let mut out = Vec::new();
        use npyz::WriterBuilder;
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
    fn int8_weights_and_int16_vector_make_the_same_job_as_json() {
        let w = npy::<i8>(&[2, 3], &[1, -2, 3, 4, 5, -6]);
        let x = npy::<i16>(&[3], &[7, 8, 9]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.npy"), w).unwrap();
        std::fs::write(dir.path().join("x.npy"), x).unwrap();
        let spec = load_job(&dir.path().join("w.npy"), &dir.path().join("x.npy")).unwrap();
        let json = JobSpec::from_json(
            r#"{"matrix": [[1, -2, 3], [4, 5, -6]], "vector": [7, 8, 9]}"#,
            &JobLimits::default(),
        )
        .unwrap();
        assert_eq!(spec, json);
        assert_eq!(spec.reference_product().unwrap().data(), &[18, 14]);
    }

    #[test]
    fn floats_and_garbage_are_clear_errors() {
        let f = npy::<f32>(&[2], &[1.0, 2.5]);
        let err = read_matrix(&f, "x.npy").unwrap_err().to_string();
        assert!(
            err.contains("integers") && err.contains("quantise"),
            "{err}"
        );
        let err = read_matrix(b"not numpy", "w.npy").unwrap_err().to_string();
        assert!(err.contains("not a .npy file"), "{err}");
        let three = npy::<i32>(&[1, 1, 1], &[1]);
        let err = read_matrix(&three, "w.npy").unwrap_err().to_string();
        assert!(err.contains("3 dimensions"), "{err}");
    }
}
