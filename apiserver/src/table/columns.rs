//! The column definitions kube-apiserver 1.33 prints per kind
//! (`pkg/printers/internalversion/printers.go` `AddHandlers`); priority 1 = `-o wide` only.

use super::descriptions as d;

/// One column: name, type, format, description, priority.
pub struct Col(pub &'static str, pub &'static str, pub &'static str, pub &'static str, pub i64);

const NAME: Col = Col("Name", "string", "name", d::NAME, 0);
const AGE: Col = Col("Age", "string", "", d::CREATION_TIMESTAMP, 0);
const CONTAINERS: Col = Col("Containers", "string", "", "Names of each container in the template.", 1);
const IMAGES: Col = Col("Images", "string", "", "Images referenced by each container in the template.", 1);

const POD: &[Col] = &[
    NAME,
    Col("Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic.", 0),
    Col("Status", "string", "", "The aggregate status of the containers in this pod.", 0),
    Col(
        "Restarts",
        "string",
        "",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        0,
    ),
    AGE,
    Col("IP", "string", "", d::POD_IP, 1),
    Col("Node", "string", "", d::POD_NODE_NAME, 1),
    Col("Nominated Node", "string", "", d::POD_NOMINATED_NODE_NAME, 1),
    Col("Readiness Gates", "string", "", d::POD_READINESS_GATES, 1),
];

const REPLICA_SET: &[Col] = &[
    NAME,
    Col("Desired", "integer", "", d::RS_SPEC_REPLICAS, 0),
    Col("Current", "integer", "", d::RS_STATUS_REPLICAS, 0),
    Col("Ready", "integer", "", d::RS_READY_REPLICAS, 0),
    AGE,
    CONTAINERS,
    IMAGES,
    Col("Selector", "string", "", d::RS_SELECTOR, 1),
];

const DAEMON_SET: &[Col] = &[
    NAME,
    Col("Desired", "integer", "", d::DS_DESIRED, 0),
    Col("Current", "integer", "", d::DS_CURRENT, 0),
    Col("Ready", "integer", "", d::DS_READY, 0),
    Col("Up-to-date", "integer", "", d::DS_UPDATED, 0),
    Col("Available", "integer", "", d::DS_AVAILABLE, 0),
    Col("Node Selector", "string", "", d::POD_NODE_SELECTOR, 0),
    AGE,
    CONTAINERS,
    IMAGES,
    Col("Selector", "string", "", d::DS_SELECTOR, 1),
];

const JOB: &[Col] = &[
    NAME,
    Col("Status", "string", "", "Status of the job.", 0),
    Col("Completions", "string", "", d::JOB_SUCCEEDED, 0),
    Col("Duration", "string", "", "Time required to complete the job.", 0),
    AGE,
    CONTAINERS,
    IMAGES,
    Col("Selector", "string", "", d::JOB_SELECTOR, 1),
];

const CRON_JOB: &[Col] = &[
    NAME,
    Col("Schedule", "string", "", d::CRON_SCHEDULE, 0),
    Col("Timezone", "string", "", d::CRON_TIME_ZONE, 0),
    Col("Suspend", "boolean", "", d::CRON_SUSPEND, 0),
    Col("Active", "integer", "", d::CRON_ACTIVE, 0),
    Col("Last Schedule", "string", "", d::CRON_LAST_SCHEDULE, 0),
    AGE,
    CONTAINERS,
    IMAGES,
    Col("Selector", "string", "", d::JOB_SELECTOR, 1),
];

const DEPLOYMENT: &[Col] = &[
    NAME,
    Col("Ready", "string", "", "Number of the pod with ready state", 0),
    Col("Up-to-date", "string", "", d::DEPLOY_UPDATED, 0),
    Col("Available", "string", "", d::DEPLOY_AVAILABLE, 0),
    AGE,
    CONTAINERS,
    IMAGES,
    Col("Selector", "string", "", d::DEPLOY_SELECTOR, 1),
];

const SERVICE: &[Col] = &[
    NAME,
    Col("Type", "string", "", d::SVC_TYPE, 0),
    Col("Cluster-IP", "string", "", d::SVC_CLUSTER_IP, 0),
    Col("External-IP", "string", "", d::SVC_EXTERNAL_IPS, 0),
    Col("Port(s)", "string", "", d::SVC_PORTS, 0),
    AGE,
    Col("Selector", "string", "", d::SVC_SELECTOR, 1),
];

const ENDPOINTS: &[Col] = &[NAME, Col("Endpoints", "string", "", d::EP_SUBSETS, 0), AGE];

const ENDPOINT_SLICE: &[Col] = &[
    NAME,
    Col("AddressType", "string", "", d::EPS_ADDRESS_TYPE, 0),
    Col("Ports", "string", "", d::EPS_PORTS, 0),
    Col("Endpoints", "string", "", d::EPS_ENDPOINTS, 0),
    AGE,
];

const NODE: &[Col] = &[
    NAME,
    Col("Status", "string", "", "The status of the node", 0),
    Col("Roles", "string", "", "The roles of the node", 0),
    AGE,
    Col("Version", "string", "", d::NODE_KUBELET_VERSION, 0),
    Col("Internal-IP", "string", "", d::NODE_ADDRESSES, 1),
    Col("External-IP", "string", "", d::NODE_ADDRESSES, 1),
    Col("OS-Image", "string", "", d::NODE_OS_IMAGE, 1),
    Col("Kernel-Version", "string", "", d::NODE_KERNEL, 1),
    Col("Container-Runtime", "string", "", d::NODE_RUNTIME, 1),
];

const EVENT: &[Col] = &[
    Col("Last Seen", "string", "", d::EV_LAST_TS, 0),
    Col("Type", "string", "", d::EV_TYPE, 0),
    Col("Reason", "string", "", d::EV_REASON, 0),
    Col("Object", "string", "", d::EV_INVOLVED, 0),
    Col("Subobject", "string", "", d::EV_FIELD_PATH, 1),
    Col("Source", "string", "", d::EV_SOURCE, 1),
    Col("Message", "string", "", d::EV_MESSAGE, 0),
    Col("First Seen", "string", "", d::EV_FIRST_TS, 1),
    Col("Count", "string", "", d::EV_COUNT, 1),
    Col("Name", "string", "name", d::NAME, 1),
];

const NAMESPACE: &[Col] = &[NAME, Col("Status", "string", "", "The status of the namespace", 0), AGE];

const SECRET: &[Col] =
    &[NAME, Col("Type", "string", "", d::SECRET_TYPE, 0), Col("Data", "string", "", d::SECRET_DATA, 0), AGE];

const SERVICE_ACCOUNT: &[Col] = &[NAME, Col("Secrets", "string", "", d::SA_SECRETS, 0), AGE];

const CONFIG_MAP: &[Col] = &[NAME, Col("Data", "string", "", d::CM_DATA, 0), AGE];

const LEASE: &[Col] = &[NAME, Col("Holder", "string", "", d::LEASE_HOLDER, 0), AGE];

const DEFAULT: &[Col] = &[NAME, AGE];

/// The columns of a kind; Name and Age for kinds without a printer.
pub fn columns(kind: &str) -> &'static [Col] {
    match kind {
        "Pod" => POD,
        "Service" => SERVICE,
        "Endpoints" => ENDPOINTS,
        "Secret" => SECRET,
        "ConfigMap" => CONFIG_MAP,
        "Namespace" => NAMESPACE,
        "Node" => NODE,
        "Event" => EVENT,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "Deployment" => DEPLOYMENT,
        "ReplicaSet" => REPLICA_SET,
        "DaemonSet" => DAEMON_SET,
        "Job" => JOB,
        "CronJob" => CRON_JOB,
        "EndpointSlice" => ENDPOINT_SLICE,
        "Lease" => LEASE,
        _ => DEFAULT,
    }
}
