//! One scheduling decision: filter every node, score the feasible ones, pick the best (ties
//! broken at random). O(nodes) with integer arithmetic; nothing is cloned per node.

use rand::Rng;

use crate::cache::Cache;
use crate::filter::fits;
use crate::fit_error::FitError;
use crate::pod_info::Needs;
use crate::score::{
    least_allocated, normalized, preferred_affinity, reverse_normalized, AFFINITY_WEIGHT, LEAST_ALLOCATED_WEIGHT,
    SPREAD_WEIGHT, TAINT_WEIGHT,
};
use crate::taints::untolerated_preferences;

#[derive(Debug, Clone, Copy)]
struct Candidate {
    slot: usize,
    least_allocated: i64,
    siblings: i64,
    soft_taints: i64,
    affinity: i64,
}

/// Buffers reused across decisions.
#[derive(Debug, Default)]
pub struct Scratch {
    candidates: Vec<Candidate>,
    /// Pods of the placed pod's owner per slot (all zero between decisions).
    siblings: Vec<u32>,
}

/// The node slot the pod should go to, or why none fits.
pub fn place(cache: &Cache, needs: &Needs, scratch: &mut Scratch, rng: &mut impl Rng) -> Result<usize, FitError> {
    let Scratch { candidates, siblings } = scratch;
    candidates.clear();
    let mut err = FitError { num_nodes: cache.node_count(), ..Default::default() };
    siblings.resize(cache.slots().len(), 0);
    let owner_counts = needs.usage.owner.as_deref().and_then(|o| cache.owner_counts(o));
    for (slot, n) in owner_counts.into_iter().flatten() {
        if let Some(c) = siblings.get_mut(*slot) {
            *c = *n;
        }
    }
    let mut reasons = Vec::new();
    for (slot, node) in cache.slots().iter().enumerate() {
        let Some(node) = node else { continue };
        let Some(props) = &node.props else { continue };
        reasons.clear();
        if !fits(needs, node, props, &mut reasons) {
            for r in &reasons {
                err.add(r.to_string());
            }
            continue;
        }
        candidates.push(Candidate {
            slot,
            least_allocated: least_allocated(needs, node, props),
            siblings: siblings.get(slot).map_or(0, |n| i64::from(*n)),
            soft_taints: if props.taints.is_empty() {
                0
            } else {
                untolerated_preferences(&props.taints, &needs.tolerations)
            },
            affinity: if needs.preferred.is_empty() { 0 } else { preferred_affinity(needs, props) },
        });
    }
    for (slot, _) in owner_counts.into_iter().flatten() {
        if let Some(c) = siblings.get_mut(*slot) {
            *c = 0;
        }
    }
    if candidates.is_empty() {
        return Err(err);
    }
    let max_siblings = candidates.iter().map(|c| c.siblings).max().unwrap_or(0);
    let max_soft_taints = candidates.iter().map(|c| c.soft_taints).max().unwrap_or(0);
    let max_affinity = candidates.iter().map(|c| c.affinity).max().unwrap_or(0);
    let mut best = (i64::MIN, 0usize);
    let mut ties = 0u32;
    for c in candidates.iter() {
        let score = LEAST_ALLOCATED_WEIGHT * c.least_allocated
            + SPREAD_WEIGHT * reverse_normalized(c.siblings, max_siblings)
            + TAINT_WEIGHT * reverse_normalized(c.soft_taints, max_soft_taints)
            + AFFINITY_WEIGHT * normalized(c.affinity, max_affinity);
        if score > best.0 {
            best = (score, c.slot);
            ties = 1;
        } else if score == best.0 {
            // Reservoir sampling: each of the tied nodes wins with equal probability.
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best.1 = c.slot;
            }
        }
    }
    Ok(best.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::NodeProps;
    use crate::pod_info::PodUsage;
    use crate::resources::{PodRequests, Resources};
    use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, PreferredSchedulingTerm, Taint};
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    const GI: i64 = 1 << 30;

    fn props(name: &str, cpu: i64) -> NodeProps {
        NodeProps {
            name: name.into(),
            allocatable: Resources { milli_cpu: cpu, memory: 8 * GI, pods: 110, ..Default::default() },
            labels: [("name".to_string(), name.to_string())].into_iter().collect(),
            ready: true,
            ..Default::default()
        }
    }

    fn needs(cpu: i64, owner: Option<&str>) -> Needs {
        Needs {
            usage: PodUsage {
                requests: PodRequests {
                    requests: Resources { milli_cpu: cpu, pods: 1, ..Default::default() },
                    non_zero_milli_cpu: cpu.max(100),
                    non_zero_memory: 200 << 20,
                },
                ports: vec![],
                owner: owner.map(String::from),
            },
            ..Default::default()
        }
    }

    fn name(cache: &Cache, slot: usize) -> &str {
        cache.node(slot).map(|n| n.name.as_str()).unwrap_or("?")
    }

    /// Places `n` pods one after another, assuming each, and returns the count per node.
    fn place_all(cache: &mut Cache, n: usize, pod: &Needs) -> std::collections::BTreeMap<String, usize> {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut scratch = Scratch::default();
        let mut out = std::collections::BTreeMap::new();
        for i in 0..n {
            let slot = place(cache, pod, &mut scratch, &mut rng).expect("a node fits");
            *out.entry(name(cache, slot).to_string()).or_default() += 1;
            cache.assume(&format!("p{i}"), slot, pod.usage.clone());
        }
        out
    }

    #[test]
    fn least_allocated_prefers_the_emptier_node() {
        let mut cache = Cache::default();
        cache.apply_node(props("small", 2000));
        cache.apply_node(props("big", 8000));
        let mut rng = SmallRng::seed_from_u64(1);
        let slot = place(&cache, &needs(500, None), &mut Scratch::default(), &mut rng).expect("fits");
        assert_eq!(name(&cache, slot), "big");
    }

    #[test]
    fn siblings_spread_over_equal_nodes() {
        let mut cache = Cache::default();
        for n in ["a", "b", "c"] {
            cache.apply_node(props(n, 4000));
        }
        let counts = place_all(&mut cache, 6, &needs(100, Some("rs-1")));
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![2, 2, 2], "{counts:?}");
    }

    #[test]
    fn spreading_outweighs_free_space() {
        // Node a has far more room, but already runs two pods of the owner; b runs none.
        let mut cache = Cache::default();
        cache.apply_node(props("a", 4000));
        cache.apply_node(props("b", 500));
        let a = 0;
        cache.assume("x1", a, needs(100, Some("rs-1")).usage);
        cache.assume("x2", a, needs(100, Some("rs-1")).usage);
        let mut rng = SmallRng::seed_from_u64(3);
        let slot = place(&cache, &needs(100, Some("rs-1")), &mut Scratch::default(), &mut rng).expect("fits");
        assert_eq!(name(&cache, slot), "b");
    }

    #[test]
    fn soft_taints_and_preferred_affinity() {
        let mut cache = Cache::default();
        let mut tainted = props("tainted", 4000);
        tainted.taints =
            vec![Taint { key: "soft".into(), effect: "PreferNoSchedule".into(), value: None, time_added: None }];
        cache.apply_node(tainted);
        cache.apply_node(props("plain", 4000));
        let mut rng = SmallRng::seed_from_u64(5);
        for _ in 0..10 {
            let slot = place(&cache, &needs(100, None), &mut Scratch::default(), &mut rng).expect("fits");
            assert_eq!(name(&cache, slot), "plain");
        }
        let mut pod = needs(100, None);
        pod.preferred = vec![PreferredSchedulingTerm {
            weight: 100,
            preference: NodeSelectorTerm {
                match_expressions: Some(vec![NodeSelectorRequirement {
                    key: "name".into(),
                    operator: "In".into(),
                    values: Some(vec!["tainted".into()]),
                }]),
                match_fields: None,
            },
        }];
        // Preferred affinity (2 x 100) does not beat the soft taint (3 x 100).
        let slot = place(&cache, &pod, &mut Scratch::default(), &mut rng).expect("fits");
        assert_eq!(name(&cache, slot), "plain");
        cache.apply_node(props("other", 4000));
        let mut preferred_plain = pod.clone();
        preferred_plain.preferred[0].preference.match_expressions.as_mut().expect("set")[0].values =
            Some(vec!["other".into()]);
        let slot = place(&cache, &preferred_plain, &mut Scratch::default(), &mut rng).expect("fits");
        assert_eq!(name(&cache, slot), "other");
    }

    #[test]
    fn ties_are_broken_at_random() {
        let mut cache = Cache::default();
        for n in ["a", "b", "c", "d"] {
            cache.apply_node(props(n, 4000));
        }
        let mut rng = SmallRng::seed_from_u64(11);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let slot = place(&cache, &needs(100, None), &mut Scratch::default(), &mut rng).expect("fits");
            seen.insert(name(&cache, slot).to_string());
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
    }

    #[test]
    fn failure_message_counts_reasons() {
        let mut cache = Cache::default();
        cache.apply_node(props("a", 1000));
        cache.apply_node(props("b", 1000));
        let mut cordoned = props("c", 1000);
        cordoned.unschedulable = true;
        cache.apply_node(cordoned);
        let mut rng = SmallRng::seed_from_u64(1);
        let err = place(&cache, &needs(2000, None), &mut Scratch::default(), &mut rng).expect_err("nothing fits");
        assert_eq!(err.to_string(), "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu.");
        let empty = Cache::default();
        let err = place(&empty, &needs(1, None), &mut Scratch::default(), &mut rng).expect_err("no nodes");
        assert_eq!(err.to_string(), "no nodes available to schedule pods");
    }

    #[test]
    fn assumed_pods_fill_nodes() {
        let mut cache = Cache::default();
        cache.apply_node(props("a", 1000));
        cache.apply_node(props("b", 1000));
        let counts = place_all(&mut cache, 4, &needs(500, None));
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![2, 2]);
        let mut rng = SmallRng::seed_from_u64(1);
        let err = place(&cache, &needs(500, None), &mut Scratch::default(), &mut rng).expect_err("full");
        assert_eq!(err.to_string(), "0/2 nodes are available: 2 Insufficient cpu.");
    }
}
