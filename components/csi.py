"""ceph-csi RBD and CephFS (charts 3.11.0) against the external Ceph cluster, and the StorageClasses.

The cephx keys come from the cluster (`CephCluster.csi_keys`, a secret Output) straight into
Kubernetes Secrets; they never appear in a command line, a values file or a log. Both charts
run in the `ceph-csi` namespace with their own ConfigMap names (the charts' defaults would
collide); they create no Secret and no StorageClass of their own (`secret.create`,
`storageClass.create` false): those are separate resources here, so each class names its own
provisioner and node users.
"""

from collections.abc import Callable

import pulumi
import pulumi_kubernetes as k8s

from components.ceph import CephCluster
from components.kube import install_release
from model import ceph, releases
from model.schema import StackConfig
from render import ceph as render
from render.helm import HelmRelease

NAMESPACE = "ceph-csi"
RBD_DRIVER = "rbd.csi.ceph.com"
CEPHFS_DRIVER = "cephfs.csi.ceph.com"
DEFAULT_CLASS = "ceph-rbd"
# krbd on CentOS Stream 9 (kernel 5.14) maps images with these features (ceph-csi docs: 5.3+).
RBD_IMAGE_FEATURES = "layering,exclusive-lock,object-map,fast-diff"


def rbd_values(fsid: str, monitors: list[str]) -> dict:
    """Values for ceph-csi-rbd; every key exists in the chart's values.yaml (tests check)."""
    return {
        "csiConfig": [{"clusterID": fsid, "monitors": monitors}],
        "configMapName": "ceph-csi-config-rbd",
        "cephConfConfigMapName": "ceph-config-rbd",
        "kmsConfigMapName": "ceph-csi-encryption-kms-config-rbd",
        "secret": {"create": False},
        "storageClass": {"create": False},
        "provisioner": {"replicaCount": 2},
    }


def cephfs_values(fsid: str, monitors: list[str]) -> dict:
    """Values for ceph-csi-cephfs; every key exists in the chart's values.yaml (tests check)."""
    return {
        "csiConfig": [{"clusterID": fsid, "monitors": monitors,
                       "cephFS": {"subvolumeGroup": render.CSI_SUBVOLUME_GROUP}}],
        "configMapName": "ceph-csi-config-cephfs",
        "cephConfConfigMapName": "ceph-config-cephfs",
        "secret": {"create": False},
        "storageClass": {"create": False},
        "provisioner": {"replicaCount": 2},
    }


def secret_params(prefix: str, provisioner: str, node: str) -> dict[str, str]:
    """The StorageClass parameters that name the provisioner and node users' Secrets."""
    return {
        "csi.storage.k8s.io/provisioner-secret-name": provisioner,
        "csi.storage.k8s.io/provisioner-secret-namespace": NAMESPACE,
        "csi.storage.k8s.io/controller-expand-secret-name": provisioner,
        "csi.storage.k8s.io/controller-expand-secret-namespace": NAMESPACE,
        "csi.storage.k8s.io/node-stage-secret-name": node,
        "csi.storage.k8s.io/node-stage-secret-namespace": NAMESPACE,
    }


class CephCsi(pulumi.ComponentResource):
    """ceph-csi drivers, their user Secrets, and the StorageClasses (RBD replicated is the default)."""

    storage_classes: list[str]

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        cluster: CephCluster,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("seoul:csi:CephCsi", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider)
        namespace = k8s.core.v1.Namespace(NAMESPACE, metadata={
            "name": NAMESPACE,
            # The node plugins mount host paths and run privileged.
            "labels": {"pod-security.kubernetes.io/enforce": "privileged"},
        }, opts=k8s_opts)
        after_ns = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespace]))
        keys = cluster.csi_keys
        fs = ceph.filesystem(cfg)
        self.storage_classes = []

        def secret(user: str, fields: Callable[[str], dict[str, str]]) -> k8s.core.v1.Secret:
            return k8s.core.v1.Secret(
                user,
                metadata={"name": user, "namespace": NAMESPACE},
                type="Opaque",
                string_data=pulumi.Output.secret(keys.apply(lambda k: fields(k.get(user, "")))),
                opts=pulumi.ResourceOptions.merge(after_ns, pulumi.ResourceOptions(depends_on=[cluster.ready])),
            )

        def release(chart: releases.Chart, values: dict) -> k8s.helm.v3.Release:
            return install_release(HelmRelease(chart.name, chart, NAMESPACE, values), after_ns)

        rbd_pool = ceph.default_rbd_pool(cfg)
        if rbd_pool is not None:
            provisioner, node = "csi-rbd-provisioner", "csi-rbd-node"
            secrets = [secret(provisioner, lambda key, u=provisioner: {"userID": u, "userKey": key}),
                       secret(node, lambda key, u=node: {"userID": u, "userKey": key})]
            driver = release(releases.CEPH_CSI_RBD, rbd_values(cluster.fsid, cluster.monitors))
            params = {"clusterID": cluster.fsid, "imageFeatures": RBD_IMAGE_FEATURES,
                      "csi.storage.k8s.io/fstype": "ext4", **secret_params("rbd", provisioner, node)}
            self._storage_class(DEFAULT_CLASS, RBD_DRIVER, {**params, "pool": rbd_pool.name}, True,
                                [driver, *secrets], k8s_opts)
            for ec in ceph.ec_rbd_pools(cfg):
                meta = ceph.rbd_metadata_pool(cfg, ec)
                assert meta is not None  # model/ceph.py refuses an EC rbd pool without one
                self._storage_class(f"ceph-rbd-{ec.name}", RBD_DRIVER,
                                    {**params, "pool": meta.name, "dataPool": ec.name}, False,
                                    [driver, *secrets], k8s_opts)
        if fs is not None:
            provisioner, node = "csi-cephfs-provisioner", "csi-cephfs-node"
            secrets = [
                secret(provisioner, lambda key, u=provisioner: {"adminID": u, "adminKey": key}),
                # Dynamic volumes stage with adminID/adminKey, static ones with userID/userKey.
                secret(node, lambda key, u=node: {"adminID": u, "adminKey": key, "userID": u, "userKey": key}),
            ]
            driver = release(releases.CEPH_CSI_CEPHFS, cephfs_values(cluster.fsid, cluster.monitors))
            self._storage_class("cephfs", CEPHFS_DRIVER,
                                {"clusterID": cluster.fsid, "fsName": fs.name,
                                 **secret_params("cephfs", provisioner, node)}, False, [driver, *secrets], k8s_opts)
        self.register_outputs({"storageClasses": self.storage_classes})

    def _storage_class(self, name: str, driver: str, parameters: dict[str, str], default: bool,
                       after: list[pulumi.Resource], opts: pulumi.ResourceOptions) -> None:
        annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
        k8s.storage.v1.StorageClass(
            name,
            metadata={"name": name, "annotations": annotations},
            provisioner=driver,
            parameters=parameters,
            reclaim_policy="Delete",
            allow_volume_expansion=True,
            volume_binding_mode="Immediate",
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=after)),
        )
        self.storage_classes.append(name)
