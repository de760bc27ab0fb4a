"""Home page: the train form refuses bad values next to their fields and starts nothing."""
from __future__ import annotations

from e2e_support import screenshot


def test_invalid_value_is_shown_inline_and_creates_no_run(server, page):
    runs_before = server.get("/api/runs")
    posted: list[str] = []
    page.on("request", lambda request: posted.append(request.url) if request.method == "POST" else None)
    page.goto(server.url + "/")
    page.wait_for_selector("#train-form[data-ready='1']")
    page.select_option("#train-method", "dae")
    # The empty shared fields show the method's defaults for the chosen dataset (8×8 digits).
    digits_defaults = server.get("/api/methods?dataset=digits")["training"]["dae"]["defaults"]
    page.wait_for_function("document.querySelector('#train-method-hint').textContent.startsWith('Defaults for digits')")
    assert page.locator("#train-epochs").get_attribute("placeholder") == str(digits_defaults["epochs"])
    assert page.locator("#train-batch_size").get_attribute("placeholder") == str(digits_defaults["batch_size"])
    page.fill("#train-epochs", "0")
    page.fill("#train-lr", "fast")
    page.fill("#method-noise_std", "5")  # the spec allows 0 – 2
    page.click("#train-submit")

    epochs = page.locator('[data-field="epochs"]')
    assert "has-error" in epochs.get_attribute("class")
    assert epochs.locator(".field-error").inner_text() == "must be ≥ 1"
    assert page.locator("#train-epochs").get_attribute("aria-invalid") == "true"
    assert page.locator('[data-field="lr"] .field-error').inner_text() == "must be a number"
    assert page.locator('[data-field="noise_std"] .field-error').inner_text() == "must be ≤ 2"
    assert page.locator("#train-form-error").is_visible()
    assert page.locator('[data-field="embedding_dim"] .field-error').inner_text() == ""  # empty = default: fine
    screenshot(page, "home-invalid-form")

    # Fixing one field clears its message as the person types; the others stay.
    page.fill("#train-epochs", "3")
    assert page.locator('[data-field="epochs"] .field-error').inner_text() == ""
    assert page.locator('[data-field="lr"] .field-error').inner_text() == "must be a number"

    page.wait_for_timeout(300)
    assert not [url for url in posted if url.endswith("/api/runs")], "the form sent a request despite invalid values"
    assert server.get("/api/runs") == runs_before
    if not runs_before:
        assert page.locator("#runs-empty").is_visible()


def test_server_refusal_is_mapped_to_its_field(server, page):
    """A value only the server can judge (a dataset that does not exist) comes back as a 422 and is
    shown on the dataset field, not as a generic failure."""
    runs_before = server.get("/api/runs")
    page.goto(server.url + "/")
    page.wait_for_selector("#train-form[data-ready='1']")
    # Tamper with the select the way a stale page would: the option names a dataset the server lacks.
    page.evaluate("""() => {
        const select = document.querySelector('#train-dataset');
        select.add(new Option('gone', 'gone-dataset'));
        select.value = 'gone-dataset';
    }""")
    page.fill("#train-epochs", "1")
    with page.expect_response(lambda response: response.url.endswith("/api/runs") and response.request.method == "POST") as answer:
        page.click("#train-submit")
    assert answer.value.status == 422
    error = page.locator('[data-field="dataset"] .field-error')
    error.wait_for()
    assert "gone-dataset" in error.inner_text()
    assert page.locator("#train-submit").is_enabled()
    assert server.get("/api/runs") == runs_before


def test_runs_table_lists_the_trained_run(server, page, trained_run):
    run_id = trained_run["run_id"]
    run = server.get(f"/api/runs/{run_id}")
    page.goto(server.url + "/")
    row = page.locator(f"#runs-body tr[data-run-id='{run_id}']")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == run_id and cells[1] == "digits"
    assert cells[2].startswith("Denoising autoencoder")
    assert "succeeded" in cells[3]
    assert cells[4] == f"{100 * run['metrics']['knn_accuracy']:.1f}%"
    assert row.locator(f"a[href='/runs/{run_id}']").count() == 2
    screenshot(page, "home")


def _zip_of_images(path) -> None:
    """3 class folders × 4 tiny PNGs, plus a text file the import must skip with a reason."""
    import io
    import zipfile

    from PIL import Image

    with zipfile.ZipFile(path, "w") as archive:
        for label, shade in (("circles", 40), ("squares", 140), ("stars", 240)):
            for i in range(4):
                buffer = io.BytesIO()
                Image.new("L", (12, 12), color=shade + i).save(buffer, format="PNG")
                archive.writestr(f"shapes/{label}/{i}.png", buffer.getvalue())
        archive.writestr("shapes/circles/notes.txt", "not an image")


def test_zip_upload_shows_its_report_and_becomes_selectable(server, page, tmp_path):
    archive = tmp_path / "My Shapes.zip"
    _zip_of_images(archive)
    page.goto(server.url + "/")
    page.wait_for_selector("#train-form[data-ready='1']")
    page.set_input_files("#upload-file", str(archive))
    assert page.locator("#upload-name").get_attribute("placeholder") == "my-shapes"
    page.click("#upload-submit")
    report = page.locator("#upload-report")
    report.wait_for(state="visible")
    text = report.inner_text()
    assert "12 images found" in text
    assert "3 classes: circles, squares, stars" in text
    assert "1 file skipped" in text
    skipped = report.locator(".skipped-list li").all_inner_texts()
    assert len(skipped) == 1 and "notes.txt" in skipped[0]
    # The report shows at once; the dataset list is reloaded after it, then the new one is chosen.
    page.wait_for_function("document.querySelector('#train-dataset').value === 'my-shapes'")
    assert any(item["name"] == "my-shapes" for item in server.get("/api/datasets"))
    report.scroll_into_view_if_needed()
    screenshot(page, "home-upload")
    # The same name again is refused on the name field, not as a generic failure.
    page.set_input_files("#upload-file", str(archive))
    page.fill("#upload-name", "my-shapes")
    page.click("#upload-submit")
    error = page.locator('#upload-form [data-field="name"] .field-error')
    error.wait_for()
    assert "already exists" in error.inner_text()
