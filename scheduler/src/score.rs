//! Scores of a feasible node, 0..=100 each, weighted as upstream's default profile:
//! NodeResourcesFit LeastAllocated (1), spreading of one owner's pods (2, SelectorSpread-style),
//! TaintToleration for PreferNoSchedule taints (3) and preferred node affinity (2).

use crate::cache::NodeInfo;
use crate::node_affinity::matches_term;
use crate::node_info::NodeProps;
use crate::pod_info::Needs;

pub const MAX_SCORE: i64 = 100;
pub const LEAST_ALLOCATED_WEIGHT: i64 = 1;
pub const SPREAD_WEIGHT: i64 = 2;
pub const TAINT_WEIGHT: i64 = 3;
pub const AFFINITY_WEIGHT: i64 = 2;

/// Free share of one resource after placing the pod: `(allocatable - requested) * 100 / allocatable`,
/// 0 when the node has none or would be over.
pub fn least_allocated_share(allocatable: i64, requested: i64) -> i64 {
    if allocatable <= 0 || requested > allocatable {
        return 0;
    }
    (allocatable - requested) * MAX_SCORE / allocatable
}

/// LeastAllocated over CPU and memory (equal weights), counting requests the non-zero way.
pub fn least_allocated(needs: &Needs, node: &NodeInfo, props: &NodeProps) -> i64 {
    let pod = &needs.usage.requests;
    let cpu = least_allocated_share(
        props.allocatable.milli_cpu,
        node.non_zero_milli_cpu.saturating_add(pod.non_zero_milli_cpu),
    );
    let memory =
        least_allocated_share(props.allocatable.memory, node.non_zero_memory.saturating_add(pod.non_zero_memory));
    (cpu + memory) / 2
}

/// Sum of the weights of the preferred node affinity terms the node matches.
pub fn preferred_affinity(needs: &Needs, props: &NodeProps) -> i64 {
    needs
        .preferred
        .iter()
        .filter(|t| matches_term(&t.preference, &props.name, &props.labels))
        .map(|t| i64::from(t.weight))
        .sum()
}

/// `value` scaled so the largest over all nodes is 100 (0 everywhere when all are 0).
pub fn normalized(value: i64, max: i64) -> i64 {
    if max <= 0 {
        return 0;
    }
    value * MAX_SCORE / max
}

/// Like [`normalized`] but fewer is better: the node with `max` scores 0, one with none 100.
pub fn reverse_normalized(value: i64, max: i64) -> i64 {
    MAX_SCORE - normalized(value, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_allocated_shares() {
        let cases = [
            (4000, 0, 100),
            (4000, 1000, 75),
            (4000, 4000, 0),
            (4000, 5000, 0),
            (0, 0, 0),
            (3, 1, 66), // integer division, as upstream
        ];
        for (alloc, req, want) in cases {
            assert_eq!(least_allocated_share(alloc, req), want, "{req}/{alloc}");
        }
    }

    #[test]
    fn normalization() {
        assert_eq!(normalized(0, 0), 0);
        assert_eq!(normalized(5, 10), 50);
        assert_eq!(normalized(10, 10), 100);
        assert_eq!(reverse_normalized(0, 0), 100);
        assert_eq!(reverse_normalized(0, 4), 100);
        assert_eq!(reverse_normalized(1, 4), 75);
        assert_eq!(reverse_normalized(4, 4), 0);
    }
}
