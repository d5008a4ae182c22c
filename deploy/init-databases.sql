-- One database per service (each service owns its schema and Alembic history).
CREATE DATABASE catalog;
CREATE DATABASE matching;
CREATE DATABASE indicators;
