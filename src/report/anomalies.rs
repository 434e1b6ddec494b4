//! The text of an anomalies.csv row that stands for a run of identical
//! anomalies (same kind and detail) on consecutive frames of one file: the
//! row's `frame` is the first, and its `detail` says how many there were
//! and the last frame. Grouping the anomalies is the pipeline's; this only
//! formats the cell.

/// `detail` of a row standing for `count` anomalies on frames
/// `first..=last` (unchanged for a single one).
pub fn repeated_detail(detail: &str, count: u64, first: u64, last: u64) -> String {
    if count <= 1 {
        detail.to_string()
    } else {
        format!("{detail} ({count} times on consecutive frames {first} to {last})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_anomalies_keep_their_detail() {
        assert_eq!(repeated_detail("x", 1, 5, 5), "x");
        assert_eq!(
            repeated_detail("zero-length record", 3, 5, 7),
            "zero-length record (3 times on consecutive frames 5 to 7)"
        );
    }
}
