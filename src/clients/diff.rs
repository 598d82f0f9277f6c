//! A small unified diff for `--dry-run`: good enough for config files, where
//! the changes are few, local edits.

const CONTEXT: usize = 3;
/// Above this many changed-region lines, skip the quadratic LCS and show
/// the region as one replace block.
const LCS_LIMIT: usize = 2000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Del,
    Add,
}

/// Unified diff of `old` → `new` with `--- label` / `+++ label` headers;
/// empty string when they are equal.
pub fn unified(label: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = line_ops(&a, &b);
    // Labels are full paths here, so no git-style a/ b/ prefixes.
    let mut out = format!("--- {label}\n+++ {label} (mcp-warden)\n");
    // Walk ops, remembering line numbers in both files, and emit hunks
    // around every run of changes.
    let mut i = 0;
    let positions: Vec<(usize, usize)> = ops
        .iter()
        .scan((0usize, 0usize), |st, &(op, _)| {
            let here = *st;
            match op {
                Op::Same => *st = (st.0 + 1, st.1 + 1),
                Op::Del => st.0 += 1,
                Op::Add => st.1 += 1,
            }
            Some(here)
        })
        .collect();
    while i < ops.len() {
        if ops[i].0 == Op::Same {
            i += 1;
            continue;
        }
        let start = i.saturating_sub(CONTEXT);
        // Extend while the next change is within 2*CONTEXT same lines.
        let mut end = i;
        let mut same_run = 0;
        let mut j = i;
        while j < ops.len() {
            if ops[j].0 == Op::Same {
                same_run += 1;
                if same_run > 2 * CONTEXT {
                    break;
                }
            } else {
                same_run = 0;
                end = j;
            }
            j += 1;
        }
        let stop = (end + 1 + CONTEXT).min(ops.len());
        let (a0, b0) = positions[start];
        let a_len = ops[start..stop].iter().filter(|o| o.0 != Op::Add).count();
        let b_len = ops[start..stop].iter().filter(|o| o.0 != Op::Del).count();
        out.push_str(&format!("@@ -{},{a_len} +{},{b_len} @@\n", a0 + 1, b0 + 1));
        for (op, line) in &ops[start..stop] {
            out.push(match op {
                Op::Same => ' ',
                Op::Del => '-',
                Op::Add => '+',
            });
            // Show CRLF files without stray carriage returns in the diff.
            let body = line.trim_end_matches('\n').trim_end_matches('\r');
            out.push_str(body);
            out.push('\n');
            if !line.ends_with('\n') {
                out.push_str("\\ No newline at end of file\n");
            }
        }
        i = stop;
    }
    out
}

fn line_ops<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(Op, &'a str)> {
    let pre = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suf = a[pre..]
        .iter()
        .rev()
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    let mut ops: Vec<(Op, &str)> = a[..pre].iter().map(|l| (Op::Same, *l)).collect();
    if am.len() + bm.len() > LCS_LIMIT {
        ops.extend(am.iter().map(|l| (Op::Del, *l)));
        ops.extend(bm.iter().map(|l| (Op::Add, *l)));
    } else {
        // Classic LCS table over the differing middle.
        let (n, m) = (am.len(), bm.len());
        let mut t = vec![vec![0u32; m + 1]; n + 1];
        for x in (0..n).rev() {
            for y in (0..m).rev() {
                t[x][y] = if am[x] == bm[y] {
                    t[x + 1][y + 1] + 1
                } else {
                    t[x + 1][y].max(t[x][y + 1])
                };
            }
        }
        let (mut x, mut y) = (0, 0);
        while x < n || y < m {
            if x < n && y < m && am[x] == bm[y] {
                ops.push((Op::Same, am[x]));
                x += 1;
                y += 1;
            } else if x < n && (y == m || t[x + 1][y] >= t[x][y + 1]) {
                // Deletions first, as diff(1) prints them.
                ops.push((Op::Del, am[x]));
                x += 1;
            } else {
                ops.push((Op::Add, bm[y]));
                y += 1;
            }
        }
    }
    ops.extend(a[a.len() - suf..].iter().map(|l| (Op::Same, *l)));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_inputs_give_empty_diff() {
        assert_eq!(unified("f", "a\n", "a\n"), "");
    }

    #[test]
    fn shows_changed_lines_with_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n";
        let d = unified("x.json", old, new);
        assert_eq!(d, "--- x.json\n+++ x.json (mcp-warden)\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n");
    }

    #[test]
    fn far_apart_changes_make_two_hunks() {
        let old: String = (1..=30).map(|i| format!("{i}\n")).collect();
        let new: String = (1..=30)
            .map(|i| match i {
                2 => "two\n".to_string(),
                28 => "28b\n".to_string(),
                _ => format!("{i}\n"),
            })
            .collect();
        let d = unified("x", &old, &new);
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
        assert!(d.contains("+28b"));
    }
}
