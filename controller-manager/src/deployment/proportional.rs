//! Proportional scaling (upstream `DeploymentController.scale` and `GetProportion`): when a
//! Deployment is resized in the middle of a rollout, the replicas to add or remove are spread
//! over its active ReplicaSets in proportion to their size (from each one's `max-replicas`
//! annotation, the Deployment size it was last scaled for), largest first, the rounding leftover
//! going to the largest.

use std::cmp::Ordering;

use jiff::Timestamp;

/// A ReplicaSet as proportional scaling sees it.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub created: Option<Timestamp>,
    pub replicas: i32,
    /// The `deployment.kubernetes.io/max-replicas` annotation.
    pub max_replicas: Option<i32>,
}

/// The deployment being resized.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub replicas: i32,
    pub max_surge: i32,
    /// `status.replicas`, the fallback when an annotation is missing.
    pub status_replicas: i32,
}

/// Older first, then by name (`ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &Member, b: &Member) -> Ordering {
    a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name))
}

/// New sizes of the active ReplicaSets `members` (returned in the same order).
pub fn sizes(members: &[Member], target: Target) -> Vec<i32> {
    let total: i32 = members.iter().map(|m| m.replicas).sum();
    let allowed = if target.replicas > 0 { target.replicas + target.max_surge } else { 0 };
    let to_add = allowed - total;
    let mut order: Vec<usize> = (0..members.len()).collect();
    match to_add.cmp(&0) {
        // Scaling up: bigger first, newer first among equals.
        Ordering::Greater => order.sort_by(|&i, &j| {
            members[j].replicas.cmp(&members[i].replicas).then_with(|| by_creation(&members[j], &members[i]))
        }),
        // Scaling down: bigger first, older first among equals.
        Ordering::Less => order.sort_by(|&i, &j| {
            members[j].replicas.cmp(&members[i].replicas).then_with(|| by_creation(&members[i], &members[j]))
        }),
        Ordering::Equal => {}
    }
    let mut sizes: Vec<i32> = members.iter().map(|m| m.replicas).collect();
    let mut added = 0;
    if to_add != 0 {
        for &i in &order {
            let p = proportion(&members[i], target, to_add, added);
            sizes[i] += p;
            added += p;
        }
        if let Some(&first) = order.first() {
            sizes[first] = (sizes[first] + to_add - added).max(0);
        }
    }
    sizes
}

fn proportion(m: &Member, target: Target, to_add: i32, added: i32) -> i32 {
    if m.replicas == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(m, target);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// `getReplicaSetFraction`: how much this ReplicaSet grows (or shrinks) when the deployment goes
/// from the size it was annotated with to its new maximum.
fn fraction(m: &Member, target: Target) -> i32 {
    if target.replicas == 0 {
        return -m.replicas;
    }
    let max_now = target.replicas + target.max_surge;
    let before = match m.max_replicas {
        Some(n) if n != 0 => n,
        _ if target.status_replicas == 0 => return 0,
        _ => target.status_replicas,
    };
    let new_size = (f64::from(m.replicas) * f64::from(max_now) / f64::from(before)).round();
    new_size as i32 - m.replicas
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, created_s: i64, replicas: i32, max: Option<i32>) -> Member {
        Member { name: name.into(), created: Timestamp::from_second(created_s).ok(), replicas, max_replicas: max }
    }

    /// (what, members, target replicas, max surge, status replicas) → sizes.
    type Case = (&'static str, Vec<Member>, i32, i32, i32, Vec<i32>);

    #[test]
    fn proportional_cases() {
        let cases: Vec<Case> = vec![
            (
                "10 → 20 mid-rollout, 4 old and 6 new of max 10",
                vec![member("old", 1, 4, Some(10)), member("new", 2, 6, Some(10))],
                20,
                0,
                10,
                vec![8, 12],
            ),
            (
                "100 → 90 with surge 3: 103 allowed before, 93 now",
                vec![member("a", 1, 33, Some(103)), member("b", 2, 70, Some(103))],
                90,
                3,
                103,
                vec![30, 63],
            ),
            (
                "scale to zero empties everything",
                vec![member("a", 1, 3, Some(5)), member("b", 2, 2, Some(5))],
                0,
                0,
                5,
                vec![0, 0],
            ),
            (
                "missing annotations fall back to status.replicas",
                vec![member("a", 1, 5, None), member("b", 2, 5, None)],
                20,
                0,
                10,
                vec![10, 10],
            ),
            (
                "leftover goes to the largest (newest among equals when growing)",
                vec![member("a", 1, 1, Some(3)), member("b", 2, 1, Some(3)), member("c", 3, 1, Some(3))],
                4,
                0,
                3,
                vec![1, 1, 2],
            ),
            (
                "nothing to do at the allowed size",
                vec![member("a", 1, 4, Some(6)), member("b", 2, 2, Some(6))],
                5,
                1,
                6,
                vec![4, 2],
            ),
        ];
        for (what, members, replicas, max_surge, status_replicas, want) in cases {
            let got = sizes(&members, Target { replicas, max_surge, status_replicas });
            assert_eq!(got, want, "{what}");
        }
    }
}
