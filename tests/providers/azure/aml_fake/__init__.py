"""A loopback fake of Azure Resource Manager + the Azure ML workspace REST API for the azure
provider's tests, driven by the real `MLClient`; its contract (what it models and what it does
not) is README.md beside this file."""

from .fake import AmlFake, start_aml_fake

__all__ = ["AmlFake", "start_aml_fake"]
