"""Analytics: the numbers an owner reads (KPIs, cohorts, customer value, RFM, uplift, what if).

Layout (see docs/analytics.md and docs/kpis.md):

* ``periods.py`` — calendar periods (day … year) as instants in programme time (pure);
* ``model.py`` — :class:`KpiSet`: the counted facts of a period and every KPI as a formula on
  them (pure, exact: ``Fraction`` rates, ``Decimal`` money);
* ``kpis.py``, ``cohorts.py``, ``rfm.py`` — the counting, on Polars frames of the facts;
* ``clv.py`` — BG/NBD and Gamma-Gamma (published likelihoods, fitted with scipy), CLV;
* ``uplift.py`` — treated against held-out members, with confidence intervals;
* ``whatif.py`` — a period replayed under a proposed programme document, in memory;
* ``service.py`` — reading the facts from storage (or from the columnar store, ``store.py``)
  and the use cases the API and CLI call. Nothing in this package writes to the database.
"""
