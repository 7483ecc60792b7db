int fx__schema_placeholder;
