//! The parsers of flag values that clap has none for: shares, positive numbers, minutes
//! and lists of counts. Each says what it wants in words, and clap exits with status 2
//! and that message.

use crate::models::{CONVS_PER_BLOCK, MAX_BLOCKS};

/// A share from 0 to below 1 (`--label-smoothing`, `--dropout`, `--ema`).
pub(crate) fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        Ok(_) => Err(format!("{s} is not from 0 to below 1")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// A share above 0 and below 1 (`--test-share`: a test set of no images tests nothing).
pub(crate) fn test_share(s: &str) -> Result<f64, String> {
    match share(s)? {
        v if v > 0.0 => Ok(v),
        _ => Err(format!(
            "{s} holds out no test images; give a share above 0"
        )),
    }
}

/// A finite number of 0 or more (`--weight-decay`).
pub(crate) fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        Ok(_) => Err(format!("{s} is not a finite number of 0 or more")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// A number above 0 (`--lr`).
pub(crate) fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        Ok(v) if !v.is_finite() => Err(format!("{s} is not a finite number")),
        Ok(_) => Err(format!("{s} is not above 0")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// Minutes above 0 and at most a year (`--checkpoint-every`).
pub(crate) fn minutes(s: &str) -> Result<f64, String> {
    match positive_f64(s)? {
        m if m <= 525_600.0 => Ok(m),
        _ => Err(format!("{s} minutes is more than a year")),
    }
}

/// `--channels 1|3`: grey or colour.
pub(crate) fn channels(s: &str) -> Result<i64, String> {
    match s {
        "1" => Ok(1),
        "3" => Ok(3),
        _ => Err(format!("'{s}' is not 1 (grey) or 3 (colour)")),
    }
}

/// `--filters 32,64`: the filters of each convolution block, one to four positive counts.
pub fn filters(s: &str) -> Result<Vec<i64>, String> {
    counts(s, |n| n > 0, "positive filter counts like 32,64")
}

/// `--convs 1,2`: convolutions in each block (1 to 4), one count for every block or one
/// per block.
pub(crate) fn convs(s: &str) -> Result<Vec<i64>, String> {
    counts(
        s,
        |n| CONVS_PER_BLOCK.contains(&n),
        "counts from 1 to 4 like 1,2",
    )
}

/// One to [`MAX_BLOCKS`] comma-separated counts, each `valid`; `what` says which.
fn counts(s: &str, valid: fn(i64) -> bool, what: &str) -> Result<Vec<i64>, String> {
    let counts: Vec<i64> = s
        .split(',')
        .map(|p| p.trim().parse::<i64>().ok().filter(|&n| valid(n)))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("'{s}' is not a list of {what}"))?;
    if counts.len() > MAX_BLOCKS {
        return Err(format!(
            "'{s}' has {} blocks; at most {MAX_BLOCKS} fit a 28-pixel image (each halves it)",
            counts.len()
        ));
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_one_to_four_positive_counts() {
        assert_eq!(filters("32,64"), Ok(vec![32, 64]));
        assert_eq!(filters("16, 32,64"), Ok(vec![16, 32, 64]));
        for bad in ["", "x", "32,0", "32,-1", "32,,64"] {
            let err = filters(bad).unwrap_err();
            assert!(
                err.contains("not a list of positive filter counts"),
                "{bad}: {err}"
            );
        }
        let err = filters("8,8,8,8,8").unwrap_err();
        assert!(err.contains("at most 4"), "{err}");
    }

    #[test]
    fn convs_are_one_to_four_counts_of_one_to_four() {
        assert_eq!(convs("2"), Ok(vec![2]));
        assert_eq!(convs("1, 2"), Ok(vec![1, 2]));
        for bad in ["", "0", "5", "1,x"] {
            let err = convs(bad).unwrap_err();
            assert!(err.contains("counts from 1 to 4"), "{bad}: {err}");
        }
        assert!(convs("1,1,1,1,1").unwrap_err().contains("at most 4"));
    }

    #[test]
    fn numbers_out_of_range_say_so() {
        assert!(non_negative_f64("-0.1").unwrap_err().contains("-0.1"));
        assert!(non_negative_f64("inf").is_err());
        assert!(share("1").unwrap_err().contains("not from 0 to below 1"));
        assert!(minutes("600000").unwrap_err().contains("more than a year"));
        assert!(positive_f64("0").unwrap_err().contains("not above 0"));
    }
}
