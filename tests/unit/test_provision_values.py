"""Helm values rendered from params, and the plan/backend documents built without AWS."""

from __future__ import annotations

import json

from opsbook.params import load_params
from opsbook.provision import addons, backend


def test_values_come_from_params() -> None:
    p = load_params("sandbox")
    values = addons.render(p, addons.Facts(certificate_arn="arn:aws:acm:eu-central-1:1:certificate/x"))
    assert set(values) == {a.name for a in p.eks.addons}
    ingress = values["ingress-nginx"]["controller"]["service"]
    assert ingress["annotations"]["service.beta.kubernetes.io/aws-load-balancer-ssl-cert"].endswith("/x")
    assert ingress["internal"]["enabled"] is False
    ca = values["cluster-autoscaler"]
    assert ca["autoDiscovery"]["clusterName"] == p.eks.cluster_name
    assert f"k8s.io/cluster-autoscaler/{p.eks.cluster_name}" in ca["autoDiscovery"]["tags"]
    dns = values["external-dns"]
    assert dns["txtOwnerId"] == p.eks.cluster_name and set(dns["domainFilters"]) == {p.zones.public, p.zones.private}
    bsl = values["velero"]["configuration"]["backupStorageLocation"][0]
    assert (bsl["bucket"], bsl["config"]["region"]) == (p.buckets.velero, p.region)
    dd = values["datadog"]["datadog"]
    assert (dd["clusterName"], dd["site"]) == (p.eks.cluster_name, p.datadog.site)
    assert "apiKey" not in dd and dd["apiKeyExistingSecret"]


def test_without_a_certificate_no_tls_annotations() -> None:
    values = addons.render(load_params("sandbox"), addons.Facts())
    annotations = values["ingress-nginx"]["controller"]["service"]["annotations"]
    assert not any("ssl" in key for key in annotations)


def test_policy_merge_keeps_other_statements() -> None:
    other = {"Sid": "Other", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "x"}
    tls = backend.tls_only_statement("aws", "b")
    merged = backend.merged_policy({"Statement": [other, {**tls, "Effect": "Allow"}]}, [tls])
    assert merged["Statement"] == [other, tls]
    assert backend._has_statements(json.loads(json.dumps(merged)), [tls])
    assert not backend._has_statements({"Statement": [other]}, [tls])


def test_backend_names_outside_the_home_region() -> None:
    p = load_params("sandbox")
    home, other = backend.backend_names(p), backend.backend_names(p, "eu-west-1")
    assert home.state_bucket == p.buckets.terraform_state and home.state_key == f"sandbox/{p.region}/terraform.tfstate"
    assert other.state_bucket == f"{p.buckets.terraform_state}-eu-west-1"
    assert other.lock_table == p.lock_table and other.alias_arn.startswith("arn:aws:kms:eu-west-1:")
