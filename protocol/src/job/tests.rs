//! Tests of job parsing, validation, ids and canonical bytes.

use super::*;

const SEED: &str = include_str!("../../testdata/seed-matvec-10x10.json");

fn parse(text: &str) -> Result<JobSpec, JobSpecError> {
    JobSpec::from_json(text, &JobLimits::default())
}

#[test]
fn seed_job_parses_and_multiplies() {
    let spec = parse(SEED).unwrap();
    assert_eq!((spec.m(), spec.k(), spec.n()), (10, 10, 1));
    let y = spec.reference_product().unwrap();
    assert_eq!(
        y.data(),
        &[2058, 1690, 3369, 2923, 2018, 2887, 2489, 2410, 2179, 2632]
    );
}

#[test]
fn matrix_times_matrix() {
    let spec =
        parse(r#"{"matrix": [[1, 2], [3, 4], [5, 6]], "rhs": [[1, 0, 2], [0, 1, -1]]}"#).unwrap();
    assert_eq!((spec.m(), spec.k(), spec.n()), (3, 2, 3));
    let y = spec.reference_product().unwrap();
    assert_eq!(y.data(), &[1, 2, 0, 3, 4, 2, 5, 6, 4]);
    assert_eq!(parse(&spec.to_json()).unwrap(), spec);
}

#[test]
fn errors_name_row_and_column() {
    let err = parse(r#"{"matrix": [[1, 2], [3, 1.5]], "vector": [1, 2]}"#).unwrap_err();
    assert_eq!(err.to_string(), "matrix[1][1] is not an integer: 1.5");
    let err = parse(r#"{"matrix": [[1, "a"]], "vector": [1, 2]}"#).unwrap_err();
    assert_eq!(err.to_string(), "matrix[0][1] is not an integer: \"a\"");
    let err = parse(r#"{"matrix": [[1, 2]], "vector": [1, null]}"#).unwrap_err();
    assert_eq!(err.to_string(), "vector[1] is not an integer: null");
    let err = parse(r#"{"matrix": [[1, 2], [3]], "vector": [1, 2]}"#).unwrap_err();
    assert_eq!(
        err,
        JobSpecError::RaggedRow {
            operand: Operand::Matrix,
            row: 1,
            len: 1,
            expected: 2
        }
    );
    assert!(err.to_string().contains("row 1 has 1 entries, expected 2"));
    let err = parse(r#"{"matrix": [[1, 2]], "rhs": [[1], [2, 3]]}"#).unwrap_err();
    assert!(matches!(
        err,
        JobSpecError::RaggedRow {
            operand: Operand::Rhs,
            row: 1,
            ..
        }
    ));
}

#[test]
fn out_of_range_values_are_reported_with_limit() {
    let err = parse(r#"{"matrix": [[1, 2147483648]], "vector": [1, 2]}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "matrix[0][1] = 2147483648 is out of range: |value| must be at most 2147483647"
    );
    assert!(parse(r#"{"matrix": [[-2147483647]], "vector": [2147483647]}"#).is_ok());
    let err = parse(r#"{"matrix": [[1]], "vector": [-2147483648]}"#).unwrap_err();
    assert!(matches!(err, JobSpecError::OutOfRange { .. }));
    let err = parse(r#"{"matrix": [[1]], "vector": [18446744073709551615]}"#).unwrap_err();
    assert!(matches!(err, JobSpecError::OutOfRange { .. }));
    let err = parse(r#"{"matrix": [[1e300]], "vector": [1]}"#).unwrap_err();
    assert!(matches!(err, JobSpecError::OutOfRange { .. }));
    let err = parse(r#"{"matrix": [[1.0]], "vector": [1]}"#).unwrap_err();
    assert!(matches!(err, JobSpecError::NotAnInteger { .. }));
}

#[test]
fn shape_errors() {
    assert!(matches!(
        parse(r#"{"matrix": [], "vector": [1]}"#),
        Err(JobSpecError::Empty {
            operand: Operand::Matrix
        })
    ));
    assert!(matches!(
        parse(r#"{"matrix": [[]], "vector": [1]}"#),
        Err(JobSpecError::Empty { .. })
    ));
    assert!(matches!(
        parse(r#"{"matrix": [[1]], "vector": []}"#),
        Err(JobSpecError::Empty {
            operand: Operand::Vector
        })
    ));
    let err = parse(r#"{"matrix": [[1, 2, 3]], "vector": [1, 2]}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "matrix has 3 columns but vector has 2 rows; they must match"
    );
    assert!(matches!(
        parse(r#"{"matrix": [[1]], "vector": [1], "rhs": [[1]]}"#),
        Err(JobSpecError::BothRightHandSides)
    ));
    assert!(matches!(
        parse(r#"{"matrix": [[1]]}"#),
        Err(JobSpecError::MissingField { .. })
    ));
    assert!(matches!(
        parse(r#"{"matrix": [[1]], "vectr": [1]}"#),
        Err(JobSpecError::UnknownField { .. })
    ));
    assert!(matches!(
        parse(r#"[1, 2]"#),
        Err(JobSpecError::NotAnObject { .. })
    ));
    assert!(matches!(
        parse(r#"{"matrix": [1, 2], "vector": [1]}"#),
        Err(JobSpecError::NotAnArray { .. })
    ));
    let err = parse("{\"matrix\": [[1,]]}").unwrap_err();
    assert!(matches!(err, JobSpecError::Json { line: 1, .. }));
}

#[test]
fn size_limits() {
    let limits = JobLimits {
        max_entries: 2,
        ..JobLimits::default()
    };
    let err = JobSpec::from_json(r#"{"matrix": [[1, 2, 3]], "vector": [1, 2, 3]}"#, &limits)
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, JobSpecError::TooLarge { .. }), "{err}");
    let limits = JobLimits {
        max_rows: 1,
        ..JobLimits::default()
    };
    let err = JobSpec::from_json(r#"{"matrix": [[1], [2]], "vector": [1]}"#, &limits).unwrap_err();
    assert!(err.to_string().contains("rows of matrix (m) is 2"), "{err}");
    let limits = JobLimits {
        max_json_bytes: 10,
        ..JobLimits::default()
    };
    assert!(matches!(
        JobSpec::from_json(SEED, &limits),
        Err(JobSpecError::InputTooLarge { .. })
    ));
}

#[test]
fn ids_are_content_derived() {
    let a = parse(SEED).unwrap();
    let b = parse(&a.to_json()).unwrap();
    assert_eq!(a.descriptors(), b.descriptors());
    let c = parse(&SEED.replacen("[9, 2", "[9, 3", 1)).unwrap();
    assert_ne!(a.descriptors(), c.descriptors());
    // Same entries, different shape: different id.
    let d = parse(r#"{"matrix": [[1, 2]], "vector": [3, 4]}"#).unwrap();
    let e = parse(r#"{"matrix": [[1], [2]], "vector": [3]}"#).unwrap();
    assert_ne!(d.descriptors(), e.descriptors());
}

#[test]
fn canonical_bytes_round_trip() {
    let spec = parse(SEED).unwrap();
    let back = JobSpec::from_canonical_bytes(
        (10, 10, &spec.w_bytes()),
        (10, 1, &spec.x_bytes()),
        &JobLimits::default(),
    )
    .unwrap();
    assert_eq!(back, spec);
    let err = JobSpec::from_canonical_bytes(
        (10, 10, &spec.w_bytes()[..8]),
        (10, 1, &spec.x_bytes()),
        &JobLimits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, JobSpecError::ByteLength { .. }));
    assert_eq!(spec.worst_case_accumulator(), 99 * 10 * 10);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn render(rows: &[Vec<String>]) -> String {
        let rows: Vec<String> = rows.iter().map(|r| format!("[{}]", r.join(", "))).collect();
        format!("[{}]", rows.join(", "))
    }

    proptest! {
        #[test]
        fn a_bad_cell_is_named_by_row_and_column(
            (m, k, r, c) in (1usize..6, 1usize..6)
                .prop_flat_map(|(m, k)| (Just(m), Just(k), 0..m, 0..k)),
            bad in prop::sample::select(vec!["1.5", "\"a\"", "null", "true", "[1]", "-0.25"]),
        ) {
            let mut rows: Vec<Vec<String>> =
                (0..m).map(|i| (0..k).map(|j| (i * k + j).to_string()).collect()).collect();
            rows[r][c] = bad.to_string();
            let vector: Vec<String> = (0..k).map(|j| j.to_string()).collect();
            let text = format!(
                r#"{{"matrix": {}, "vector": [{}]}}"#,
                render(&rows),
                vector.join(", ")
            );
            let err = JobSpec::from_json(&text, &JobLimits::default()).unwrap_err();
            let expected = Position { operand: Operand::Matrix, row: r, col: c };
            prop_assert!(
                matches!(&err, JobSpecError::NotAnInteger { at, .. } if *at == expected),
                "{}", err
            );
            let message = err.to_string();
            prop_assert!(message.contains(&format!("matrix[{r}][{c}]")), "{}", message);
        }

        #[test]
        fn a_short_row_is_named(m in 2usize..6, k in 2usize..6, r in 1usize..6) {
            let r = r % m;
            prop_assume!(r > 0);
            let mut rows: Vec<Vec<String>> =
                (0..m).map(|_| (0..k).map(|j| j.to_string()).collect()).collect();
            rows[r].pop();
            let text = format!(r#"{{"matrix": {}, "vector": [{}]}}"#, render(&rows),
                (0..k).map(|j| j.to_string()).collect::<Vec<_>>().join(", "));
            let err = JobSpec::from_json(&text, &JobLimits::default()).unwrap_err();
            prop_assert_eq!(err, JobSpecError::RaggedRow {
                operand: Operand::Matrix, row: r, len: k - 1, expected: k,
            });
        }

        #[test]
        fn valid_jobs_round_trip_through_json_and_bytes(
            (m, k, n) in (1usize..5, 1usize..5, 1usize..4),
            seed in any::<u64>(),
        ) {
            let mut state = seed | 1;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % (2 * MAX_ABS_ENTRY as u64 + 1)) as i64 - MAX_ABS_ENTRY
            };
            let w = IntMatrix::new(m, k, (0..m * k).map(|_| next()).collect()).unwrap();
            let x = IntMatrix::new(k, n, (0..k * n).map(|_| next()).collect()).unwrap();
            let spec = JobSpec::new(w, x, &JobLimits::default()).unwrap();
            let again = JobSpec::from_json(&spec.to_json(), &JobLimits::default()).unwrap();
            prop_assert_eq!(&again, &spec);
            prop_assert_eq!(again.descriptors(), spec.descriptors());
            let bytes = JobSpec::from_canonical_bytes(
                (m, k, &spec.w_bytes()),
                (k, n, &spec.x_bytes()),
                &JobLimits::default(),
            ).unwrap();
            prop_assert_eq!(bytes, spec);
        }
    }
}

#[test]
fn entries_outside_i32_have_no_canonical_bytes() {
    use crate::job::entries_to_bytes;
    let ok = IntMatrix::column(vec![1, -(MAX_ABS_ENTRY), MAX_ABS_ENTRY]);
    assert_eq!(entries_to_bytes(&ok, Operand::Vector).unwrap().len(), 12);
    // 2^32 + 7 once encoded as i32::MIN, aliasing every other out-of-range value.
    for bad in [i64::from(i32::MIN), 1 << 32 | 7, i64::MAX, i64::MIN] {
        let m = IntMatrix::new(2, 2, vec![0, 0, 0, bad]).unwrap();
        let err = entries_to_bytes(&m, Operand::Rhs).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("rhs[1][1] = {bad} is out of range: |value| must be at most {MAX_ABS_ENTRY}")
        );
    }
}

#[test]
fn the_worst_case_accumulator_never_wraps() {
    use crate::job::worst_case_accumulator;
    assert_eq!(worst_case_accumulator(10, 99, 10), Some(9_900));
    // 2^32 · 2^64 · 2^63 wraps a u128 to 0 with unchecked arithmetic in release builds.
    assert_eq!(worst_case_accumulator(1 << 32, 1 << 63, 1 << 63), None);
    assert_eq!(worst_case_accumulator(u64::MAX, u64::MAX, u64::MAX), None);
    assert_eq!(
        worst_case_accumulator(u64::MAX, u64::MAX, 1),
        Some(u128::from(u64::MAX) * u128::from(u64::MAX))
    );
}

/// `rows` rows of `cols` ones, as the matrix of a job with a vector of `cols` ones.
fn ones(rows: usize, cols: usize) -> String {
    let row = format!("[{}]", vec!["1"; cols].join(","));
    let vector = format!("[{}]", vec!["1"; cols].join(","));
    format!(
        r#"{{"matrix": [{}], "vector": {vector}}}"#,
        vec![row; rows].join(",")
    )
}

#[test]
fn limits_are_checked_while_reading_and_errors_give_exact_counts() {
    let limits = JobLimits {
        max_rows: 8,
        max_k: 4,
        max_n: 4,
        max_entries: 12,
        ..JobLimits::default()
    };
    let parse = |text: &str| JobSpec::from_json(text, &limits).map(|_| ()).unwrap_err();
    // The whole offending array is counted (not kept) so the count is exact.
    assert_eq!(
        parse(&ones(20, 1)).to_string(),
        "job too large: rows of matrix (m) is 20, over the limit of 8"
    );
    assert_eq!(
        parse(&ones(1, 9)).to_string(),
        "job too large: columns of matrix (k) is 9, over the limit of 4"
    );
    // 4 rows of 4 pass the row limit but not the entry limit; rows left are counted.
    assert_eq!(
        parse(&ones(5, 4)).to_string(),
        "job too large: entries of W (m·k) is 20, over the limit of 12"
    );
    // Both limits passed: the rows are named first, as they always were.
    assert_eq!(
        parse(&ones(9, 4)).to_string(),
        "job too large: rows of matrix (m) is 9, over the limit of 8"
    );
    let err = parse(r#"{"matrix": [[1]], "vector": [1, 2, 3, 4, 5, 6]}"#);
    assert_eq!(
        err.to_string(),
        "job too large: length of vector (k) is 6, over the limit of 4"
    );
    let err = parse(r#"{"matrix": [[1]], "rhs": [[1, 2, 3, 4, 5, 6, 7]]}"#);
    assert!(err.to_string().contains("columns of rhs (n) is 7"), "{err}");
    // A long row after the first is ragged, with its full length.
    let err = parse(r#"{"matrix": [[1, 2], [1, 2, 3, 4, 5]], "vector": [1, 2]}"#);
    assert_eq!(
        err,
        JobSpecError::RaggedRow {
            operand: Operand::Matrix,
            row: 1,
            len: 5,
            expected: 2
        }
    );
}

#[test]
fn refused_values_are_quoted_briefly_and_in_document_order() {
    let long = "x".repeat(10_000);
    let err = parse(&format!(r#"{{"matrix": [["{long}"]], "vector": [1]}}"#)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("matrix[0][0] is not an integer: \"{}…", "x".repeat(39))
    );
    let err = parse(r#"{"matrix": [[1, {"a": [1, 2], "b": null}]], "vector": [1]}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"matrix[0][1] is not an integer: {"a":[1,2],"b":null}"#
    );
    let err = parse(r#"{"matrix": {"rows": 2}, "vector": [1]}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"matrix must be an array, found {"rows":2}"#
    );
    let err = parse(&format!(r#"{{"{long}": 1}}"#)).unwrap_err();
    assert!(
        matches!(&err, JobSpecError::UnknownField { field } if field.chars().count() == 41),
        "{err}"
    );
    let err = parse(r#"{"matrix": [[1]], "matrix": [[2]], "vector": [1]}"#).unwrap_err();
    assert_eq!(err, JobSpecError::DuplicateField { field: "matrix" });
    let err = parse(r#""matrix""#).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"job JSON must be an object with "matrix" and "vector" or "rhs", found "matrix""#
    );
    // The first problem met is reported: here before the trailing syntax error.
    let err = parse(r#"{"matrix": [[1.5]], "vector": [1,"#).unwrap_err();
    assert!(matches!(err, JobSpecError::NotAnInteger { .. }), "{err}");
    let err = parse(r#"{"matrix": [[1]], "vector": [1]} trailing"#).unwrap_err();
    assert!(matches!(err, JobSpecError::Json { line: 1, .. }), "{err}");
}

#[test]
fn deep_nesting_is_a_json_error_not_a_stack_overflow() {
    for at in ["", r#"{"matrix": [[1, "#, r#"{"matrix": [[1]], "vector": "#] {
        let text = format!("{at}{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse(&text).unwrap_err();
        assert!(
            matches!(&err, JobSpecError::Json { detail, .. } if detail.contains("recursion limit")),
            "{err}"
        );
    }
}
