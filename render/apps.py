"""The applications behind ingress-nginx (`apps:` in the stack file), as Kubernetes objects.

Each app becomes a Deployment (probes, spread over nodes, no privilege), a Service, an Ingress
of class nginx, a HorizontalPodAutoscaler (autoscaling/v2, CPU and memory, with a scale-down
stabilization window) and a PodDisruptionBudget. The Deployment leaves `replicas` to the HPA
(kubernetes.io, "Horizontal Pod Autoscaling: migrating Deployments to horizontal scaling"):
a replica count in the manifest would reset the HPA's choice on every `pulumi up`.
"""

from model.schema import App, StackConfig
from render.addons import INGRESS_CLASS
from render.helm import Manifest, manifest

SERVICE_PORT = 80


def labels(app: App) -> dict[str, str]:
    return {"app.kubernetes.io/name": app.name, "app.kubernetes.io/part-of": "seoul-shop"}


def namespaces(cfg: StackConfig) -> list[Manifest]:
    """One Namespace per namespace the apps use, with the restricted Pod Security Standard enforced."""
    names = sorted({a.namespace for a in cfg.apps})
    psa = {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/audit": "restricted"}
    return [manifest("v1", "Namespace", name, labels=psa) for name in names]


def deployment(app: App) -> Manifest:
    selector = {"app.kubernetes.io/name": app.name}
    probe = {"httpGet": {"path": app.health_path, "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 2}
    container = {
        "name": app.name,
        "image": app.image,
        "ports": [{"name": "http", "containerPort": app.port}],
        "readinessProbe": {**probe, "failureThreshold": 3},
        "livenessProbe": {**probe, "failureThreshold": 6, "initialDelaySeconds": 10},
        "startupProbe": {**probe, "failureThreshold": 30},
        "resources": {
            "requests": {"cpu": app.cpu.request, "memory": app.memory.request},
            "limits": {"cpu": app.cpu.limit, "memory": app.memory.limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    pod = {
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        # Spread over nodes; tainted nodes (control planes, ingress hosts) do not count as
        # places the pods could have gone.
        "topologySpreadConstraints": [{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "nodeTaintsPolicy": "Honor",
            "labelSelector": {"matchLabels": selector},
        }],
        "terminationGracePeriodSeconds": 30,
    }
    spec = {
        "selector": {"matchLabels": selector},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "template": {"metadata": {"labels": labels(app)}, "spec": pod},
    }
    return manifest("apps/v1", "Deployment", app.name, app.namespace, labels=labels(app), spec=spec)


def service(app: App) -> Manifest:
    spec = {
        "type": "ClusterIP",
        "selector": {"app.kubernetes.io/name": app.name},
        "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
    }
    return manifest("v1", "Service", app.name, app.namespace, labels=labels(app), spec=spec)


def ingress(app: App) -> Manifest:
    backend = {"service": {"name": app.name, "port": {"number": SERVICE_PORT}}}
    spec = {
        "ingressClassName": INGRESS_CLASS,
        "rules": [{"host": app.host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}],
    }
    return manifest("networking.k8s.io/v1", "Ingress", app.name, app.namespace, labels=labels(app), spec=spec)


def autoscaler(app: App) -> Manifest:
    def utilization(resource: str, target: int) -> dict:
        return {"type": "Resource",
                "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": target}}}

    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app.name},
        "minReplicas": app.replicas.min,
        "maxReplicas": app.replicas.max,
        "metrics": [utilization("cpu", app.cpu.target_utilization),
                    utilization("memory", app.memory.target_utilization)],
        "behavior": {
            "scaleDown": {
                "stabilizationWindowSeconds": app.scale_down_stabilization_seconds,
                "policies": [{"type": "Percent", "value": 20, "periodSeconds": 60}],
                "selectPolicy": "Min",
            },
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 30},
                             {"type": "Pods", "value": 4, "periodSeconds": 30}],
                "selectPolicy": "Max",
            },
        },
    }
    return manifest("autoscaling/v2", "HorizontalPodAutoscaler", app.name, app.namespace, labels=labels(app),
                    spec=spec)


def disruption_budget(app: App) -> Manifest:
    spec = {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": app.name}}}
    return manifest("policy/v1", "PodDisruptionBudget", app.name, app.namespace, labels=labels(app), spec=spec)


def objects(app: App) -> list[Manifest]:
    """Deployment, Service, Ingress, HPA, PDB of one app, in the order they are created."""
    return [deployment(app), service(app), ingress(app), autoscaler(app), disruption_budget(app)]
