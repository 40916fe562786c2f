#!/usr/bin/env python3
"""Regenerates the descriptor tables (core_v1.rs, apps_v1.rs, ...) of apiserver/src/protobuf/.

Usage: python3 gen_tables.py apiserver/src/protobuf && rustfmt --edition 2021 apiserver/src/protobuf/mod.rs

Inputs (from ~/.cargo/registry/src, fetch them with e.g. `cargo fetch` in a crate depending on them):
- k8s-pb 0.9.0: field numbers and wire types (prost structs generated from the upstream
  k8s.io/api and apimachinery generated.proto files);
- k8s-openapi 0.29.0: JSON field names and requiredness (serde code of v1_33, newer versions
  for fields added later).
Go pointer fields (zero value meaningful, kept in JSON) are listed by hand in POINTERS.
Embedded Go structs (VolumeSource, ProbeHandler, ...) become `inline` fields.
"""
import glob, os, re, sys, collections

REG = glob.glob(os.path.expanduser('~/.cargo/registry/src/*/'))[0]
PB = REG + 'k8s-pb-0.9.0/src/'
OA = REG + 'k8s-openapi-0.29.0/src/'
OUT = sys.argv[1] if len(sys.argv) > 1 else '/tmp/gen_out'

# ---------- parse k8s-pb ----------
msgs = {}  # (modpath tuple, name) -> list of fields
attr_re = re.compile(r'#\[prost\(([^)]*)\)\]')
for f in glob.glob(PB + '**/mod.rs', recursive=True):
    mod = tuple(os.path.relpath(os.path.dirname(f), PB).split('/'))
    text = open(f).read()
    for m in re.finditer(r'\npub struct (\w+) \{(.*?)\n\}', text, re.S):
        name, body = m.group(1), m.group(2)
        fields = []
        # attribute then pub name: type,
        for fm in re.finditer(r'#\[prost\(([^)]*)\)\]\s*pub (r#)?(\w+):\s*(.*?),\n(?=\s*(///|#\[|$))', body + '\n', re.S):
            attr, fname, ftype = fm.group(1), fm.group(3), ''.join(fm.group(4).split())
            tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
            kind = attr.split(',')[0].strip()
            rep = 'repeated' in attr
            fields.append(dict(attr=attr, rname=fname, type=ftype, tag=tag, kind=kind, rep=rep, mod=mod))
        msgs[(mod, name)] = fields

def resolve(mod, tpath):
    """Resolve a rust type path relative to module mod to (modtuple, name)."""
    parts = tpath.split('::')
    m = list(mod)
    while parts and parts[0] == 'super':
        m.pop(); parts.pop(0)
    if parts and parts[0] == 'crate':
        m = []; parts.pop(0)
    return (tuple(m + parts[:-1]), parts[-1])

def inner_type(t):
    t = t.replace('::core::option::Option<', '').replace('::prost::alloc::vec::Vec<', '')
    t = t.replace('::prost::alloc::boxed::Box<', '')
    return t.rstrip('>').strip()

# ---------- parse k8s-openapi ----------
oa = {}  # (modtuple, name) -> {norm rust field: (json, optional)}
def load_oa(ver):
    res = {}
    base = OA + ver + '/'
    for f in glob.glob(base + '**/*.rs', recursive=True):
        mod = tuple(os.path.relpath(os.path.dirname(f), base).split('/'))
        text = open(f).read()
        for m in re.finditer(r'\npub struct (\w+) \{(.*?)\n\}', text, re.S):
            name, body = m.group(1), m.group(2)
            opt = {}
            for fm in re.finditer(r'\n    pub (\w+): (.*?),\n', body + ',\n'):
                opt[fm.group(1)] = fm.group(2).startswith('Option<')
            js = dict((r, j) for j, r in re.findall(r'"([^"]+)" => Field::Key_(\w+),', text))
            fields = {}
            for r, o in opt.items():
                if r in js:
                    fields[norm(r)] = (js[r], o)
            res[(mod, name.lower())] = (name, fields)
    return res

def norm(s):
    return s.replace('r#', '').replace('_', '').lower()

OAS = [load_oa(v) for v in ('v1_33', 'v1_34', 'v1_35', 'v1_36', 'v1_37')]

ALIAS = {'VolumeSource': 'Volume', 'ProbeHandler': 'Probe', 'EphemeralContainerCommon': 'EphemeralContainer'}

SPECIAL = {
    (('apimachinery', 'pkg', 'apis', 'meta', 'v1'), 'Time'): 'Ty::Time',
    (('apimachinery', 'pkg', 'apis', 'meta', 'v1'), 'MicroTime'): 'Ty::MicroTime',
    (('apimachinery', 'pkg', 'apis', 'meta', 'v1'), 'FieldsV1'): 'Ty::FieldsV1',
    (('apimachinery', 'pkg', 'api', 'resource'), 'Quantity'): 'Ty::Quantity',
    (('apimachinery', 'pkg', 'util', 'intstr'), 'IntOrString'): 'Ty::IntOrString',
}

ROOTS = [
    (('api', 'core', 'v1'), n) for n in
    ['Pod', 'Service', 'Endpoints', 'Secret', 'ConfigMap', 'Namespace', 'Node', 'Event', 'ServiceAccount']
] + [(('api', 'apps', 'v1'), n) for n in ['Deployment', 'ReplicaSet', 'DaemonSet']] + [
    (('api', 'batch', 'v1'), n) for n in ['Job', 'CronJob']] + [
    (('api', 'discovery', 'v1'), 'EndpointSlice'), (('api', 'coordination', 'v1'), 'Lease'),
    (('api', 'core', 'v1'), 'Binding'), (('api', 'policy', 'v1'), 'Eviction'),
    (('api', 'autoscaling', 'v1'), 'Scale'), (('apimachinery', 'pkg', 'apis', 'meta', 'v1'), 'DeleteOptions')]

# Go pointer fields (zero value is meaningful and must be kept). "Message.jsonName".
POINTERS = set('''
ObjectMeta.deletionGracePeriodSeconds OwnerReference.controller OwnerReference.blockOwnerDeletion
ListMeta.remainingItemCount
PodSpec.terminationGracePeriodSeconds PodSpec.activeDeadlineSeconds PodSpec.automountServiceAccountToken
PodSpec.shareProcessNamespace PodSpec.priority PodSpec.enableServiceLinks PodSpec.preemptionPolicy
PodSpec.setHostnameAsFQDN PodSpec.hostUsers PodSpec.runtimeClassName
Container.restartPolicy EphemeralContainerCommon.restartPolicy
SecurityContext.privileged SecurityContext.runAsUser SecurityContext.runAsGroup SecurityContext.runAsNonRoot
SecurityContext.readOnlyRootFilesystem SecurityContext.allowPrivilegeEscalation SecurityContext.procMount
PodSecurityContext.runAsUser PodSecurityContext.runAsGroup PodSecurityContext.runAsNonRoot PodSecurityContext.fsGroup
PodSecurityContext.fsGroupChangePolicy PodSecurityContext.supplementalGroupsPolicy PodSecurityContext.seLinuxChangePolicy
WindowsSecurityContextOptions.hostProcess WindowsSecurityContextOptions.gmsaCredentialSpecName
WindowsSecurityContextOptions.gmsaCredentialSpec WindowsSecurityContextOptions.runAsUserName
SeccompProfile.localhostProfile AppArmorProfile.localhostProfile
Probe.terminationGracePeriodSeconds GRPCAction.service
SecretVolumeSource.defaultMode SecretVolumeSource.optional ConfigMapVolumeSource.defaultMode ConfigMapVolumeSource.optional
KeyToPath.mode ProjectedVolumeSource.defaultMode DownwardAPIVolumeSource.defaultMode DownwardAPIVolumeFile.mode
SecretProjection.optional ConfigMapProjection.optional ServiceAccountTokenProjection.expirationSeconds
ClusterTrustBundleProjection.name ClusterTrustBundleProjection.signerName ClusterTrustBundleProjection.optional
HostPathVolumeSource.type CSIVolumeSource.readOnly CSIVolumeSource.fsType
ConfigMapKeySelector.optional SecretKeySelector.optional ConfigMapEnvSource.optional SecretEnvSource.optional
AzureDiskVolumeSource.cachingMode AzureDiskVolumeSource.fsType AzureDiskVolumeSource.readOnly AzureDiskVolumeSource.kind
ScaleIOVolumeSource.fsType ISCSIVolumeSource.initiatorName
PersistentVolumeClaimSpec.storageClassName PersistentVolumeClaimSpec.volumeMode PersistentVolumeClaimSpec.volumeAttributesClassName
TypedLocalObjectReference.apiGroup TypedObjectReference.apiGroup TypedObjectReference.namespace
VolumeMount.mountPropagation VolumeMount.recursiveReadOnly
Toleration.tolerationSeconds
TopologySpreadConstraint.minDomains TopologySpreadConstraint.nodeAffinityPolicy TopologySpreadConstraint.nodeTaintsPolicy
PodDNSConfigOption.name PodDNSConfigOption.value
ServiceSpec.allocateLoadBalancerNodePorts ServiceSpec.ipFamilyPolicy ServiceSpec.loadBalancerClass
ServiceSpec.internalTrafficPolicy ServiceSpec.trafficDistribution
ClientIPConfig.timeoutSeconds ServicePort.appProtocol EndpointPort.appProtocol EndpointAddress.nodeName
LoadBalancerIngress.ipMode
ServiceAccount.automountServiceAccountToken
ContainerStatus.started ContainerStatus.stopSignal ResourceHealth.health
Taint.timeAdded
EventSeries.count
LinuxContainerUser.uid LinuxContainerUser.gid
DeploymentSpec.replicas DeploymentSpec.revisionHistoryLimit DeploymentSpec.progressDeadlineSeconds
DeploymentStatus.collisionCount DeploymentStatus.terminatingReplicas
ReplicaSetSpec.replicas ReplicaSetStatus.terminatingReplicas
DaemonSetSpec.revisionHistoryLimit DaemonSetStatus.collisionCount
JobSpec.parallelism JobSpec.completions JobSpec.activeDeadlineSeconds JobSpec.backoffLimit JobSpec.backoffLimitPerIndex
JobSpec.maxFailedIndexes JobSpec.ttlSecondsAfterFinished JobSpec.completionMode JobSpec.suspend JobSpec.manualSelector
JobSpec.podReplacementPolicy JobSpec.managedBy
JobStatus.ready JobStatus.terminating JobStatus.failedIndexes
PodFailurePolicyOnExitCodesRequirement.containerName SuccessPolicyRule.succeededIndexes SuccessPolicyRule.succeededCount
CronJobSpec.startingDeadlineSeconds CronJobSpec.suspend CronJobSpec.successfulJobsHistoryLimit
CronJobSpec.failedJobsHistoryLimit CronJobSpec.timeZone
Endpoint.hostname Endpoint.nodeName Endpoint.zone
EndpointConditions.ready EndpointConditions.serving EndpointConditions.terminating
discovery.EndpointPort.name discovery.EndpointPort.protocol discovery.EndpointPort.port discovery.EndpointPort.appProtocol
LeaseSpec.holderIdentity LeaseSpec.leaseDurationSeconds LeaseSpec.leaseTransitions LeaseSpec.strategy
LeaseSpec.preferredHolder
Event.reportingComponent ScaleSpec.replicas
DeleteOptions.gracePeriodSeconds DeleteOptions.orphanDependents DeleteOptions.propagationPolicy
DeleteOptions.ignoreStoreReadErrorWithClusterBreakingPotential Preconditions.uid Preconditions.resourceVersion
'''.split())

FILES = {
    ('api', 'core', 'v1'): 'core_v1',
    ('api', 'apps', 'v1'): 'apps_v1',
    ('api', 'batch', 'v1'): 'batch_v1',
    ('api', 'discovery', 'v1'): 'discovery_v1',
    ('api', 'coordination', 'v1'): 'coordination_v1',
    ('apimachinery', 'pkg', 'apis', 'meta', 'v1'): 'meta_v1',
    ('api', 'policy', 'v1'): 'policy_v1',
    ('api', 'autoscaling', 'v1'): 'autoscaling_v1',
}

def const_name(n):
    s = re.sub(r'(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])', '_', n)
    return s.upper()

needed = collections.OrderedDict()
queue = list(ROOTS)
problems = []
inlined = []
names = {}
out = collections.defaultdict(list)
seen_pointer = set()

def ty_of(key, fld):
    k = fld['kind']
    simple = {'string': 'Ty::String', 'int32': 'Ty::Int32', 'int64': 'Ty::Int64', 'bool': 'Ty::Bool',
              'double': 'Ty::Double', 'bytes = "vec"': 'Ty::Bytes'}
    if k in simple:
        return simple[k]
    if k == 'message':
        tgt = resolve(fld['mod'], inner_type(fld['type']))
        if tgt in SPECIAL:
            return SPECIAL[tgt]
        queue.append(tgt)
        return 'Ty::Message(&%s)' % ref(key[0], tgt)
    if k.startswith('btree_map'):
        kv = re.search(r'btree_map = "(\w+), (\w+)"', fld['attr'])
        assert kv.group(1) == 'string', fld
        v = kv.group(2)
        if v == 'message':
            vt = fld['type'].split(',', 1)[1].strip().rstrip(',')
            vt = vt[:-1].strip().rstrip(',')  # drop closing '>' of BTreeMap
            tgt = resolve(fld['mod'], vt)
            if tgt in SPECIAL:
                return 'Ty::Map(&%s)' % SPECIAL[tgt]
            queue.append(tgt)
            return 'Ty::Map(&Ty::Message(&%s))' % ref(key[0], tgt)
        return 'Ty::Map(&%s)' % {'string': 'Ty::String', 'bytes': 'Ty::Bytes'}[v]
    raise Exception('unknown kind %s' % fld)

def oa_name(tgt):
    for o in OAS:
        if (tgt[0], tgt[1].lower()) in o:
            return o[(tgt[0], tgt[1].lower())][0]
    return tgt[1]

def ref(frommod, tgt):
    if tgt[0] not in FILES:
        raise Exception('no file for %s' % (tgt,))
    c = const_name(oa_name(tgt))
    if tgt[0] == frommod:
        return c
    return 'super::%s::%s' % (FILES[tgt[0]], c)

while queue:
    key = queue.pop(0)
    if key in needed:
        continue
    needed[key] = True
    if key not in msgs:
        problems.append('missing message %s' % (key,)); continue
    oamod = tuple(x for x in key[0])
    oafields = None
    oaname = key[1]
    lookup = ALIAS.get(key[1], key[1])
    for o in reversed(OAS):
        if (oamod, lookup.lower()) in o:
            oaname, fl = o[(oamod, lookup.lower())]
            oaname = key[1] if lookup != key[1] else oaname
            oafields = dict(oafields or {}, **fl)
    if oafields is None:
        problems.append('no k8s-openapi struct %s' % (key,)); oafields = {}
    lines = []
    for fld in sorted(msgs[key], key=lambda f: f['tag']):
        n = norm(fld['rname'])
        if n not in oafields:
            if fld['kind'] == 'message' and not fld['rep']:
                ty = ty_of(key, fld)
                lines.append('        inline(%d, %s),' % (fld['tag'], ty))
                inlined.append('%s.%s' % (oaname, fld['rname']))
                continue
            problems.append('no json name for %s.%s' % (key[1], fld['rname'])); continue
        js, optional = oafields[n]
        ty = ty_of(key, fld)
        pkey = oaname + '.' + js
        gkey = key[0][1] + '.' + pkey if key[0][0] == 'api' else None
        is_ptr = pkey in POINTERS or (gkey in POINTERS)
        if pkey == 'EndpointPort.' + js and key[0][1] == 'discovery':
            is_ptr = gkey in POINTERS
        if is_ptr:
            seen_pointer.add(gkey if gkey in POINTERS else pkey)
        if fld['rep'] or fld['kind'].startswith('btree_map'):
            ctor = 'rep' if fld['rep'] else 'map'
        elif ty.startswith('Ty::Message') or ty in ('Ty::Quantity', 'Ty::IntOrString', 'Ty::Time', 'Ty::MicroTime',
                                                       'Ty::FieldsV1'):
            ctor = 'opt'
        elif is_ptr or not optional:
            ctor = 'keep'
        else:
            ctor = 'opt'
        lines.append('        %s(%d, "%s", %s),' % (ctor, fld['tag'], js, ty))
    out[FILES.get(key[0], '?')].append((oaname, lines))

for p in problems:
    print('PROBLEM', p, file=sys.stderr)
print('inlined:', inlined, file=sys.stderr)
print('pointer entries unused:', sorted(POINTERS - seen_pointer), file=sys.stderr)

os.makedirs(OUT, exist_ok=True)
TITLES = {
    'core_v1': 'core/v1 (`k8s.io/api/core/v1/generated.proto`)',
    'apps_v1': 'apps/v1 (`k8s.io/api/apps/v1/generated.proto`)',
    'batch_v1': 'batch/v1 (`k8s.io/api/batch/v1/generated.proto`)',
    'discovery_v1': 'discovery.k8s.io/v1 (`k8s.io/api/discovery/v1/generated.proto`)',
    'coordination_v1': 'coordination.k8s.io/v1 (`k8s.io/api/coordination/v1/generated.proto`)',
    'meta_v1': 'meta/v1 (`k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto`)',
    'policy_v1': 'policy/v1 (`k8s.io/api/policy/v1/generated.proto`)',
    'autoscaling_v1': 'autoscaling/v1 (`k8s.io/api/autoscaling/v1/generated.proto`)',
}
for fname, ms in out.items():
    with open(os.path.join(OUT, fname + '.rs'), 'w') as w:
        w.write('//! Descriptor tables for %s.\n' % TITLES[fname])
        w.write('//!\n//! Generated by `gen_tables.py` from the upstream field numbers and the JSON field names of the\n//! Kubernetes API;')
        w.write(' `keep` marks Go pointer or required fields whose zero value is meaningful and is kept in JSON.\n\n')
        used = sorted({c for _, ls in ms for l in ls for c in [l.strip().split('(')[0]]})
        w.write('use super::desc::{%s, Message, Ty};\n\n' % ', '.join(used))
        for name, lines in sorted(ms):
            w.write('pub static %s: Message = Message {\n    name: "%s",\n    fields: &[\n' % (const_name(name), name))
            w.write('\n'.join(lines) + '\n    ],\n};\n\n')
print({k: len(v) for k, v in out.items()}, file=sys.stderr)
