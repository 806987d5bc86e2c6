"""Registering projects and their vintages."""

from __future__ import annotations

from datetime import date

from ledger.domain.errors import DuplicateError, UnknownProjectError
from ledger.domain.projects import Project, ProjectDetails, Vintage, project_id


class Projects:
    """Use cases of a registry's projects (needs ``self.store``)."""

    def register_project(self, details: ProjectDetails, idempotency_key: str | None = None):
        """Registers a project. Raises InvalidCommandError, DuplicateError."""
        details.check()

        def command():
            if self.store.exists(project_id(details.registry_id)):
                raise DuplicateError(f"project {details.registry_id} is already registered")
            return [Project(details)], {"project": details.registry_id}

        return self.store.run("register_project", {"details": details}, idempotency_key, command)

    def add_vintage(self, registry_id: str, vintage: Vintage, idempotency_key: str | None = None):
        """Adds a vintage year to a project (a no-op if it is there already)."""

        def command():
            project = self.get_project(registry_id)
            project.add_vintage(vintage, today=date.today())
            return [project], {"project": registry_id, "vintage": vintage.year}

        fields = {"registry_id": registry_id, "vintage": vintage}
        return self.store.run("add_vintage", fields, idempotency_key, command)

    def get_project(self, registry_id: str) -> Project:
        return self.store.get(project_id(registry_id), UnknownProjectError,
                              f"project {registry_id}")
