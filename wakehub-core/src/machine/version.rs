//! Debian version ordering (Debian Policy §5.6.12), as `dpkg --compare-versions` orders:
//! epoch numerically, then upstream version and Debian revision each compared in
//! alternating non-digit and digit parts, where `~` sorts before anything, even the end.

use std::cmp::Ordering;

/// Compares two Debian versions (`1:2.36-9+deb12u7`, `6.8.12-4`). Never panics: anything
/// that is not a well-formed version still gets a total order.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb).then_with(|| compare_part(ua, ub)).then_with(|| compare_part(ra, rb))
}

/// Epoch (0 when absent or not a number), upstream version, revision (`""` when absent).
fn split(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// The weight of one character in the non-digit parts: `~` first, then the end of the
/// part, then letters, then everything else.
fn order(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        // The non-digit prefixes, character by character.
        let na = a.iter().take_while(|c| !c.is_ascii_digit()).count();
        let nb = b.iter().take_while(|c| !c.is_ascii_digit()).count();
        let (pa, pb) = (&a[..na], &b[..nb]);
        for i in 0..na.max(nb) {
            let o = order(pa.get(i).copied()).cmp(&order(pb.get(i).copied()));
            if o != Ordering::Equal {
                return o;
            }
        }
        a = &a[na..];
        b = &b[nb..];
        // The digit runs, numerically (leading zeros ignored, any length).
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let trim = |s: &[u8]| -> Vec<u8> { s.iter().copied().skip_while(|c| *c == b'0').collect() };
        let (xa, xb) = (trim(&a[..da]), trim(&b[..db]));
        let o = xa.len().cmp(&xb.len()).then_with(|| xa.cmp(&xb));
        if o != Ordering::Equal {
            return o;
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_as_dpkg_does() {
        // Pairs checked with `dpkg --compare-versions A lt B` on Debian 12.
        for (lower, higher) in [
            ("1.0", "1.1"),
            ("1.0", "1.0+deb12u1"),
            ("2.36-9+deb12u4", "2.36-9+deb12u7"),
            ("1.0~rc1", "1.0"),
            ("1.0~~", "1.0~"),
            ("1.0", "1:0.9"),
            ("6.1.0-18", "6.1.0-21"),
            ("6.5.13-6-pve", "6.8.12-4-pve"),
            ("1.9", "1.10"),
            ("1.0-1", "1.0-1+b1"),
            ("1.0a", "1.0b"),
            ("1.0", "1.0a"),
            ("1.0.", "1.0.a"),
            ("0.9", "0.09.1"),
        ] {
            assert_eq!(compare(lower, higher), Ordering::Less, "{lower} < {higher}");
            assert_eq!(compare(higher, lower), Ordering::Greater, "{higher} > {lower}");
        }
        for (a, b) in [("1.0", "1.0"), ("0:1.0", "1.0"), ("1.01", "1.1"), ("1.0-0", "1.0-0")] {
            assert_eq!(compare(a, b), Ordering::Equal, "{a} = {b}");
        }
    }

    proptest::proptest! {
        #[test]
        fn is_a_total_order_that_never_panics(a in "[0-9a-z:.+~-]{0,12}", b in "[0-9a-z:.+~-]{0,12}", c in "[0-9a-z:.+~-]{0,12}") {
            proptest::prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
            proptest::prop_assert_eq!(compare(&a, &a), Ordering::Equal);
            if compare(&a, &b) != Ordering::Greater && compare(&b, &c) != Ordering::Greater {
                proptest::prop_assert_ne!(compare(&a, &c), Ordering::Greater);
            }
        }
    }
}
