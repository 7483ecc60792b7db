int fx__bus_placeholder;
