"""Machines that run agents (`base.Host`): this one (`local.LocalHost`), each agent in its sandbox."""
