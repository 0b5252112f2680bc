import boto3


def test_moto_server_serves_managed_policies(moto_endpoint: str) -> None:
    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    doc = iam.get_policy_version(
        PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess", VersionId="v1"
    )["PolicyVersion"]["Document"]
    assert doc["Statement"][0]["Action"] == "*"
