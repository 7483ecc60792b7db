int fx__store_placeholder;
