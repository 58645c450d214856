"""RDS: the security group, the DB subnet group over the private subnets, MySQL Multi-AZ instances."""

from __future__ import annotations

import secrets

from opsbook.sandbox.aws.seed.context import Seed, tag_list, tag_spec


def seed_rds(seed: Seed) -> None:
    ec2 = seed.client("ec2")
    rds = seed.client("rds")
    group = ec2.create_security_group(
        GroupName=f"{seed.name}-rds",
        Description="MySQL from inside the VPC",
        VpcId=seed.vpc_id,
        TagSpecifications=tag_spec("security-group", seed.tags(f"{seed.name}-rds")),
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 3306,
                "ToPort": 3306,
                "IpRanges": [{"CidrIp": seed.params.network.vpc_cidr}],
            }
        ],
    )
    subnet_group = f"{seed.name}-rds"
    rds.create_db_subnet_group(
        DBSubnetGroupName=subnet_group,
        DBSubnetGroupDescription=f"{seed.name} private subnets",
        SubnetIds=list(seed.private_subnets.values()),
        Tags=tag_list(seed.tags(subnet_group)),
    )
    for instance in seed.params.rds:
        if seed.omit.has("rds", instance.identifier):
            continue
        rds.create_db_instance(
            DBInstanceIdentifier=instance.identifier,
            Engine=instance.engine,
            EngineVersion=instance.engine_version,
            DBInstanceClass=instance.instance_class,
            AllocatedStorage=instance.allocated_storage_gb,
            StorageType="gp3",
            DBName=instance.database,
            # the master user is Terraform's; its password lives nowhere in opsbook
            MasterUsername="admin",
            MasterUserPassword=secrets.token_urlsafe(24),
            MultiAZ=instance.multi_az,
            BackupRetentionPeriod=instance.backup_retention_days,
            PreferredBackupWindow="01:00-02:00",
            StorageEncrypted=instance.storage_encrypted,
            KmsKeyId=seed.kms_keys["rds"],
            DBSubnetGroupName=subnet_group,
            VpcSecurityGroupIds=[group],
            PubliclyAccessible=False,
            Tags=tag_list(seed.tags(instance.identifier)),
        )
