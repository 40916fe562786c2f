//! The "why not" of an unschedulable pod, in upstream's words:
//! `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector.`

use std::collections::HashMap;
use std::fmt;

/// No node took the pod: how many there were and how often each reason came up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FitError {
    pub num_nodes: usize,
    pub reasons: HashMap<String, usize>,
}

impl FitError {
    pub fn add(&mut self, reason: String) {
        *self.reasons.entry(reason).or_default() += 1;
    }
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.num_nodes == 0 {
            return f.write_str("no nodes available to schedule pods");
        }
        // Upstream sorts the formatted "count reason" strings.
        let mut parts: Vec<String> = self.reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
        parts.sort();
        write!(f, "0/{} nodes are available: {}.", self.num_nodes, parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let err = |n: usize, reasons: &[(&str, usize)]| FitError {
            num_nodes: n,
            reasons: reasons.iter().map(|(r, c)| (r.to_string(), *c)).collect(),
        };
        let cases = [
            (err(0, &[]), "no nodes available to schedule pods"),
            (err(3, &[("Insufficient cpu", 3)]), "0/3 nodes are available: 3 Insufficient cpu."),
            (
                err(3, &[("node(s) didn't match Pod's node affinity/selector", 2), ("Insufficient cpu", 1)]),
                "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector.",
            ),
            (
                err(2, &[("Insufficient memory", 2), ("Insufficient cpu", 1)]),
                "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient memory.",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }
}
